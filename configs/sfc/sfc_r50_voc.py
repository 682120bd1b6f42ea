# SFC stage 1 on VOC 2012 train_aug: the authors' settings (reference §2-§5).
_base_ = [
    '../_base_/models/sfc_r50.py', '../_base_/datasets/voc12aug_cls.py',
    '../_base_/schedules/sfc_poly_3966it.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
randomness = dict(seed=10)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
