# Ablation (paper Table 4, III): L_DW^P without L_DW^W.
_base_ = './sfc_r50_voc.py'
model = dict(loss_msdw=dict(loss_weight_w=0.0))
