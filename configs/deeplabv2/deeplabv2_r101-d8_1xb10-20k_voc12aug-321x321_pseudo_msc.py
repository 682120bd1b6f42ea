# Multi-scale inputs (1.0, 0.75, 0.5) with max fusion, as deeplab-pytorch's MSC.
_base_ = './deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py'
model = dict(msc_scales=(1.0, 0.75, 0.5))
