# Ablation (paper Table 5, VII): DC only in L_DW^P.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
model = dict(loss_msdw=dict(dc_in_w=False))
