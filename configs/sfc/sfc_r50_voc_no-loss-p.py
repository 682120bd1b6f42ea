# Ablation (paper Table 4, IV): L_DW^W without L_DW^P. The prototype branch
# gets no gradient, hence find_unused_parameters for DDP.
_base_ = './sfc_r50_voc.py'
model = dict(loss_msdw=dict(loss_weight_p=0.0))
find_unused_parameters = True
