# Stage 3: IRN on stage 2's CRF labels (the authors' setting). After training,
# set custom_hooks.0.out_dir to the stage-2 output directory to write the
# masks there (masks/<id>.png), or run tools/make_pseudo_labels.py --irn.
_base_ = ['../_base_/models/irn_r50.py', '../_base_/datasets/voc12aug_irn.py',
          '../_base_/schedules/irn_poly_3ep.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
custom_hooks = [
    dict(type='CAMToPseudoLabelHook', mode='irn', out_dir=None,
         dataloader={{_base_.mask_dataloader}}, eval_ann_file={{_base_.mask_eval_ann_file}})
]
