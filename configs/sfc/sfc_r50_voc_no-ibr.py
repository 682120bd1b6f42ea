# Ablation (paper Table 4, II): L_DW^P + L_DW^W without IBR. DC keeps the
# default N = N_IBR * C_IBR * N_iter / |C| (the paper does not say otherwise);
# model.loss_msdw.n_ibr=0 is the alternative without re-sampled images.
_base_ = './sfc_r50_voc.py'
train_dataloader = dict(batch_sampler=None)
model = dict(loss_msdw=dict(n_ibr=4))  # no sampler to take N_IBR from
