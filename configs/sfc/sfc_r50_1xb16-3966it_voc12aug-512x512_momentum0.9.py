# Variant: SGD momentum 0.9 (what the authors' code appears to ask for; the
# reproduced default runs with an effective momentum of 1e-4).
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
optim_wrapper = dict(optimizer=dict(momentum=0.9))
