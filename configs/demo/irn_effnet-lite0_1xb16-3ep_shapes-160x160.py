# Stage 3 on the shapes testbed in the paper's regime: IRN's frozen backbone is
# the ImageNet EfficientNet-Lite0 (output stride 16), as the authors' IRN
# starts from ImageNet ResNet-50. Its five features: stage 1 (16 channels,
# stride 2), stage 2 (24, stride 4), stage 3 (40, stride 8), stage 4 (112,
# stride 16) and the head conv (1280, stride 16); the edge branch resizes them to
# its stride-4 grid. As from scratch, no displacement branch.
_base_ = './irn_r18-w32_1xb16-3ep_shapes-160x160.py'
feats = (16, 24, 40, 112, 1280)
model = dict(
    data_preprocessor=dict(mean=[127.0] * 3, std=[128.0] * 3),
    backbone=dict(
        _delete_=True, type='EfficientNetLite', arch='lite0', out_indices=(1, 2, 3, 4, 6),
        output_stride=16, norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0')),
    edge_head=dict(in_channels=feats, scale_factors=(0.5, 1, 2, 4, 4)))
