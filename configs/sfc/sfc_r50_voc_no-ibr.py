# Ablation (paper Table 4, II): L_DW^P + L_DW^W without IBR.
_base_ = './sfc_r50_voc.py'
train_dataloader = dict(batch_sampler=None)
