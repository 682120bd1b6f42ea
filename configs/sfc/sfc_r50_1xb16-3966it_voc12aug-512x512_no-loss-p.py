# Ablation (paper Table 4, IV): L_DW^W without L_DW^P. Reports mIoU = M_final
# (M_W' + M_P'), as the paper's Table 4 does for II-V; the prototype branch
# gets no gradient here, so M_P comes from the untrained side convolutions and
# mIoU_w (also logged) is M_W alone. find_unused_parameters for DDP.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
model = dict(loss_msdw=dict(loss_weight_p=0.0))
find_unused_parameters = True
