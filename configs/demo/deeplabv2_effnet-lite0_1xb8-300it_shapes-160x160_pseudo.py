# Stage 4 on the shapes testbed in the paper's regime: DeepLabV2's backbone
# starts from the same ImageNet EfficientNet-Lite0 weights as stage 1 (the
# paper's DeepLabV2 starts from an ImageNet ResNet-101). Our choices: output
# stride 16 without dilation (Lite0 has no dilated variant here), BN statistics
# frozen as in DeepLabV2, the ASPP-sum head on the 1280-channel head conv, and
# the testbed's short schedule (300 iterations, SGD lr 0.001, x10 for the head;
# the from-scratch recipe's 0.01 diverges on these features).
_base_ = './deeplabv2_r18-w32-d8_1xb8-300it_shapes-160x160_pseudo.py'
model = dict(
    data_preprocessor=dict(mean=[127.0] * 3, std=[128.0] * 3),
    backbone=dict(
        _delete_=True, type='EfficientNetLite', arch='lite0', out_indices=(6, ),
        output_stride=16, norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0')),
    decode_head=dict(in_channels=1280))
optim_wrapper = dict(optimizer=dict(lr=0.001))
