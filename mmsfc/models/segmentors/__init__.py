# Copyright (c) mmsfc contributors. All rights reserved.
from .sfc_encoder_decoder import SFCEncoderDecoder

__all__ = ['SFCEncoderDecoder']
