# Ablation on the shapes testbed: SFC with both consistency terms unweighted (no DC).
_base_ = './sfc_r18-w32_1xb16-400it_shapes-160x160.py'
model = dict(loss_msdw=dict(dc_in_p=False, dc_in_w=False))
