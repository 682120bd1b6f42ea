# Ablation I (paper Table 4) on the shapes testbed: IBR without the consistency
# losses, scored on the classifier CAM M_W.
_base_ = './sfc_effnet-lite0_1xb16-400it_shapes-128x128.py'
model = dict(loss_msdw=dict(loss_weight_p=0.0, loss_weight_w=0.0),
             test_cfg=dict(inference_map='w'))
val_evaluator = dict(maps=('w', 'p', 'final'))
test_evaluator = val_evaluator
