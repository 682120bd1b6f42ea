# Ablation (paper Table 4, Base): classification loss only, no IBR (M_W only).
# IBRBatchSampler without re-sampling keeps the batch a total over GPUs.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512_ibr-only.py'
train_dataloader = dict(batch_sampler=dict(num_resampled=0))
