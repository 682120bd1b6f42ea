# Ablation on the shapes testbed: SFC with both consistency terms unweighted (no DC).
_base_ = './sfc_effnet-lite0_1xb16-400it_shapes-128x128.py'
model = dict(loss_msdw=dict(dc_in_p=False, dc_in_w=False))
