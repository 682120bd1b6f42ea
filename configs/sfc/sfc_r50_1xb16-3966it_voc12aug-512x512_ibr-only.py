# Ablation (paper Table 4, I): IBR without the consistency losses. Reports M_W
# as the paper's caption says: inference_map='w', and SFCCAMMetric's headline
# mIoU follows the model's inference map. f9 and the prototype branch get no
# gradient, hence find_unused_parameters; the paper does not say how Base/I
# trained PCM (docs/method_notes.md).
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
model = dict(loss_msdw=dict(loss_weight_p=0.0, loss_weight_w=0.0),
             test_cfg=dict(inference_map='w'))
find_unused_parameters = True
