# Ablation (paper Table 5, VIII): DC only in L_DW^W.
_base_ = './sfc_r50_voc.py'
model = dict(loss_msdw=dict(dc_in_p=False))
