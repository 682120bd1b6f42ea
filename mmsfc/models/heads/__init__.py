# Copyright (c) mmsfc contributors. All rights reserved.
from .irn_displacement_head import IRNDisplacementHead
from .irn_edge_head import IRNEdgeHead
from .sfc_deeplabv2_head import SFCDeepLabV2Head
from .sfc_prototype_head import SFCPrototypeHead

__all__ = ['IRNDisplacementHead', 'IRNEdgeHead', 'SFCDeepLabV2Head', 'SFCPrototypeHead']
