# Ablation (paper Table 4, III): L_DW^P without L_DW^W.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
model = dict(loss_msdw=dict(loss_weight_w=0.0))
