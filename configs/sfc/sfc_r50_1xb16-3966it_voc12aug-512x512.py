# SFC stage 1 on VOC 2012 train_aug: the authors' settings (docs/method_notes.md §1-§10).
_base_ = [
    '../_base_/models/sfc_r50.py', '../_base_/datasets/voc12aug_cls.py',
    '../_base_/schedules/sfc_poly_3966it.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
randomness = dict(seed=10)
# DC from the training labels; pseudo labels after training once out_dir is set,
# e.g. --cfg-options custom_hooks.1.out_dir=pseudo_labels (inside work_dir).
custom_hooks = [
    dict(type='DistributionCoefficientHook'),
    dict(
        type='CAMToPseudoLabelHook',
        out_dir=None,
        dataloader={{_base_.pseudo_label_dataloader}},
        eval_ann_file={{_base_.pseudo_label_eval_ann_file}},
        cam_metric=dict(type='SFCCAMMetric', maps=('final', 'w', 'p')),
        crf=dict(iterations=12),
        crf_alpha=0.7,
        batch_size=8,
        nproc=8),
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
