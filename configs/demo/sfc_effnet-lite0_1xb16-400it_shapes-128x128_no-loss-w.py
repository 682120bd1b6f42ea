# Ablation on the shapes testbed: SFC without L_DW^W (M_W across scales), scored on M_final.
_base_ = './sfc_effnet-lite0_1xb16-400it_shapes-128x128.py'
model = dict(loss_msdw=dict(loss_weight_w=0.0))
