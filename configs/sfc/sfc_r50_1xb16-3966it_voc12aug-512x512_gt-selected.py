# GT-SELECTED checkpoint (opt-in; report its numbers as selected with pixel
# ground truth): the authors' model selection. Every 300 iterations the CAMs
# are scored single-scale without flip on VOC train (1,464 images, GT masks)
# and best_mIoU_w_plus_p_iter_*.pth keeps the checkpoint with the highest
# mIoU(M_W) + mIoU(M_P). Score the selected checkpoint with sfc_r50_1xb16-3966it_voc12aug-512x512.py
# (multi-scale + flip): this config's test_cfg is the single-scale one.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
model = dict(test_cfg=dict(scales=(1.0, ), flip=False))
train_cfg = dict(val_interval=300)
default_hooks = dict(checkpoint=dict(save_best='mIoU_w_plus_p', rule='greater'))
