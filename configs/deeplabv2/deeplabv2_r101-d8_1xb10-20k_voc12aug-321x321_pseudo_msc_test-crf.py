# MSC model tested with deeplab-pytorch's dense CRF (10 iterations, pos 3/1,
# bilateral 4/67/3): python tools/test.py THIS_CONFIG CHECKPOINT
_base_ = './deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo_msc.py'
model = dict(test_cfg=dict(crf=dict(
    iterations=10, gaussian_sxy=1, gaussian_compat=3, bilateral_sxy=67, bilateral_srgb=3,
    bilateral_compat=4)))
