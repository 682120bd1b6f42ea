# SFC CAM network (docs/method_notes.md §1-§5): ResNet-50 at output stride 16 without
# dilation, frozen BN statistics, stem + layer1 + layer2 frozen.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='SFCClassifier',
    in_channels=2048,
    num_classes=21,
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        norm_cfg=norm_cfg,
        norm_eval=True,
        frozen_stages=2,
        contract_dilation=False,
        # torchvision://resnet50 resolves (mmengine 0.10.7, its
        # hub/torchvision_0.12.json) to resnet50-0676ba61.pth, torchvision's
        # ResNet50_Weights.IMAGENET1K_V1 (not the V2 default resnet50-11ad3fa6).
        # The authors load resnet50-19c8e357.pth, the original V1 release with
        # the same reported accuracy (76.13); that the two files hold the same
        # tensors has not been verified here.
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    pcm=dict(type='SFCPCM', in_channels=3 + 2048, channels=2048, num_steps=2),
    prototype_head=dict(
        type='SFCPrototypeHead',
        in_channels=(256, 512, 1024, 2048),
        channels=(128, 128, 256, 256),
        bg_seed_scale=0.3),
    # DC comes from the training set's labels (DistributionCoefficientHook), with
    # N_IBR (images the IBR sampler re-samples per step, over all GPUs) and N_iter
    # (training images // total batch) taken from the training loader.
    loss_msdw=dict(
        type='MSDWLoss', c_ibr=3,
        loss_weight_p=1.6, loss_weight_w=0.8, dc_in_p=True, dc_in_w=True),
    # alpha, bg_offset and fg_scale are set only here: SFCCAMMetric and the
    # pseudo-label stage (CAMToPseudoLabelHook, make_pseudo_labels.py) read them.
    test_cfg=dict(
        scales=(1.0, 0.5, 1.5, 2.0), flip=True, resize='pil', inference_map='final', alpha=1.0,
        bg_offset=0.4, fg_scale=2.0))
