# Ablation (paper Table 4, Base): classification loss only, no IBR (M_W only).
# IBRBatchSampler without re-sampling keeps the batch a total over GPUs.
_base_ = './sfc_r50_voc_ibr-only.py'
train_dataloader = dict(batch_sampler=dict(num_resampled=0))
