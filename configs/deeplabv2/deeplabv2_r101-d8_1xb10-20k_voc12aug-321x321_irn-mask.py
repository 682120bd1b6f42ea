# Stage 4 on the masks of stage 3 (IRN, the paper's setting): no ignored
# pixels. The masks/ directory written by make_pseudo_labels.py --irn or the
# IRN config's hook, e.g. after
#   ln -s $PWD/work_dirs/pseudo/masks data/VOCdevkit/VOC2012/SegmentationClassIRN
_base_ = './deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py'
train_dataloader = dict(dataset=dict(data_prefix=dict(seg_map_path='SegmentationClassIRN')))
