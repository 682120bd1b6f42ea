# Ablation on the shapes testbed: SFC without L_DW^P (M_W against M_P), scored on M_final.
_base_ = './sfc_effnet-lite0_1xb16-400it_shapes-128x128.py'
model = dict(loss_msdw=dict(loss_weight_p=0.0))
