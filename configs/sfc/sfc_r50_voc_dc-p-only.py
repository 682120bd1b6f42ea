# Ablation (paper Table 5, VII): DC only in L_DW^P.
_base_ = './sfc_r50_voc.py'
model = dict(loss_msdw=dict(dc_in_w=False))
