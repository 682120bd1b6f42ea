# Ablation (paper Table 4, II): L_DW^P + L_DW^W without IBR. IBRBatchSampler
# without re-sampling keeps the batch a total over GPUs; DC's N follows the
# images really re-sampled, N = 0 (custom_hooks.0.n_ibr=4 gives the default
# N = N_IBR * C_IBR * N_iter / |C| instead; the paper does not say which).
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
train_dataloader = dict(batch_sampler=dict(num_resampled=0))
