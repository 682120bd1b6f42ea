# Variant: SGD momentum 0.9 (what the authors' code appears to ask for; the
# reproduced default runs with an effective momentum of 1e-4).
_base_ = './sfc_r50_voc.py'
optim_wrapper = dict(optimizer=dict(momentum=0.9))
