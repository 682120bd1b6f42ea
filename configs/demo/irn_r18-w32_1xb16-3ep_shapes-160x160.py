# Stage 3 on the shapes testbed (tools/demo.py): IRN trained on the CRF labels
# of stage 2, with the authors' schedule shape (3 epochs, poly). Choices for the
# testbed, not the paper's: the frozen backbone is the trained SFC CAM network's
# (no ImageNet weights here; the demo sets init_cfg to its checkpoint), batch 16,
# 160 crops (a 40x40 stride-4 grid, hence path radius 5 instead of 10), and no
# displacement branch: SFC's masks use only the boundary map, which trains and
# predicts exactly as with the branch (frozen backbone, no shared parameter), in
# a third of the CPU time.
_base_ = '../irn/irn_r50_1xb32-3ep_voc12aug-512x512.py'
data_root = 'data/shapes'
feats = (32, 32, 64, 128, 256)  # stem, layer1..layer4 of the 32-wide ResNet-18
model = dict(
    data_preprocessor=dict(size=(160, 160)),
    backbone=dict(depth=18, stem_channels=32, base_channels=32, init_cfg=None),
    edge_head=dict(in_channels=feats),
    displacement_head=None,
    loss_irn=dict(radius=5),
    test_cfg=dict(pad_size=160))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='SFCRandomRescale', scale_range={{_base_.irn_scale_range}}),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SFCRandomPasteCrop', crop_size=160, seg_pad_val=255),
    dict(type='SFCDownscaleSegMap', scale=0.25),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=False,
    dataset=dict(type='SFCShapesDataset', data_root=data_root, pipeline=train_pipeline,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassCRF')))
default_hooks = dict(logger=dict(interval=20),
                     visualization=dict(type='SegVisualizationHook', draw=False))
custom_hooks = []
