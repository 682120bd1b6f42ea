# Ablation (paper Table 5, VI): no distribution coefficient in either loss.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
model = dict(loss_msdw=dict(dc_in_p=False, dc_in_w=False))
