# Base (paper Table 4) on the shapes testbed: classification loss only, no IBR
# (the IBR sampler without re-sampling, so the batch stays a total over
# processes), scored on the classifier CAM M_W.
_base_ = './sfc_effnet-lite0_1xb16-400it_shapes-128x128_ibr-only.py'
train_dataloader = dict(batch_sampler=dict(num_resampled=0))
