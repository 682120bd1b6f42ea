# DeepLabV2 (docs/method_notes.md §15): ResNet-101 at output stride 8 (layer3/4 dilated
# 2/4 in every block), BN frozen, ASPP = sum of four dilated 3x3 convs.
# ImageNet init from torchvision (the paper's claim). deeplab-pytorch's own
# config starts from COCO-pretrained caffe weights; their keys differ from
# mmseg's and no converter is provided here, so that init is not available.
norm_cfg = dict(type='BN', requires_grad=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='SFCEncoderDecoder',
    data_preprocessor=data_preprocessor,
    msc_scales=None,
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=False,
        style='pytorch',
        norm_cfg=norm_cfg,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')),
    decode_head=dict(
        type='SFCDeepLabV2Head',
        in_channels=2048,
        in_index=0,
        dilations=(6, 12, 18, 24),
        num_classes=21,
        align_corners=False,
        # mean over the labelled pixels only, as deeplab-pytorch's
        # nn.CrossEntropyLoss(ignore_index=255): pixels the pseudo labels leave
        # uncertain (255) and the crop padding do not dilute the loss.
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
