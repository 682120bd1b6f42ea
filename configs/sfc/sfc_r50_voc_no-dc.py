# Ablation (paper Table 5, VI): no distribution coefficient in either loss.
_base_ = './sfc_r50_voc.py'
model = dict(loss_msdw=dict(dc_in_p=False, dc_in_w=False))
