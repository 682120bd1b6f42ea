# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_encoder_decoder import SFCEncoderDecoder
from .sfc_irn import SFCIRN

__all__ = ['SFCIRN', 'SFCEncoderDecoder']
