# IRN (stage 3, as in the authors' train_irn.py): frozen, detached ResNet-50
# (conv1 stride 2, stages 1-4 strides 1, 2, 2, 1; BN statistics fixed) with the
# GroupNorm edge and displacement branches on the stride-4 grid; affinity and
# displacement losses over pairs within radius 10 of that grid.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    size=(512, 512),  # training crops; test images keep their size
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='SFCIRN',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        frozen_stages=4,
        contract_dilation=False,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    edge_head=dict(type='IRNEdgeHead', in_channels=(64, 256, 512, 1024, 2048)),
    displacement_head=dict(type='IRNDisplacementHead', in_channels=(64, 256, 512, 1024, 2048)),
    loss_irn=dict(type='IRNAffinityDisplacementLoss', radius=10),
    # edge map for the random walk: padded to 512, with flip
    test_cfg=dict(pad_size=512, flip=True))
