# Copyright (c) mmsfc contributors. All rights reserved.
from .pcm import SFCPCM

__all__ = ['SFCPCM']
