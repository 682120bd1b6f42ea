# Copyright (c) mmsfc contributors. All rights reserved.
"""SFCClassifier against a literal re-statement of the authors' forward (docs/method_notes.md §1-§6,
§12): materialised prototypes, ``torch.cosine_similarity`` broadcasting, explicit PCM,
the flip merge of ``CAM.forward``. Same weights, so results must agree to float precision.
"""
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample


def l2n(x):
    return x / (torch.norm(x, p=2, dim=1, keepdim=True) + 1e-5)


def literal_forward(model, img, mask, flip_merge=False, label=None):
    x1, x2, x3, x4 = model.backbone(img)
    grid = x3.shape[2:]
    sides = [F.interpolate(l2n(conv(f.detach())), grid, mode='bilinear', align_corners=False)
             for conv, f in zip(model.prototype_head.side_convs, (x1, x2, x3, x4))]
    phi = torch.cat(sides, dim=1)
    z = model.classifier(x4)
    if flip_merge:
        z, phi, img, x4 = (t[0:1] + t[1:2].flip(-1) for t in (z, phi, img, x4))
    logits = F.adaptive_avg_pool2d(z, 1).flatten(1)
    cam = F.relu(z)
    cam = cam / (F.adaptive_max_pool2d(cam, 1) + 1e-5)
    bg = 1 - torch.max(cam, dim=1, keepdim=True)[0]
    cam = torch.cat([bg, cam], dim=1) * mask
    n, k, h, w = cam.shape
    guide = torch.cat([F.interpolate(img, (h, w), mode='bilinear', align_corners=True), x4], 1)
    f = l2n(model.pcm.proj(guide)).view(n, -1, h * w)
    aff = F.relu(torch.matmul(f.transpose(1, 2), f))
    aff = aff / (torch.sum(aff, dim=1, keepdim=True) + 1e-5)
    cam_w = torch.matmul(torch.matmul(cam.view(n, k, h * w), aff), aff).view(n, k, h, w)
    scores = cam_w.detach().clone()
    scores[:, 0] *= 0.3
    seeds = F.one_hot(scores.argmax(1), k).permute(0, 3, 1, 2).float()
    seeds = seeds * (mask if label is None else label)
    protos = (seeds.unsqueeze(2) * phi.unsqueeze(1)).sum(dim=(3, 4)) / (h * w)  # N,K,C
    cam_p = F.relu(torch.cosine_similarity(phi.unsqueeze(1), protos[..., None, None], dim=2))
    return logits, cam_w, cam_p


def test_training_losses_match_literal_restatement(tiny_model):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 64, 64)
    labels = [[1, 0, 1, 0], [0, 0, 0, 1]]
    boxes = [(0, 64, 8, 60), (4, 50, 0, 64)]
    samples = [SegDataSample(metainfo=dict(cls_label=label, valid_box=box))
               for label, box in zip(labels, boxes)]
    ours = tiny_model.loss(x, samples)

    y = torch.tensor(labels, dtype=torch.float)
    y21 = torch.cat([torch.ones(2, 1), y], 1)[:, :, None, None]
    valid = torch.zeros(2, 1, 64, 64)
    for v, (t, b, left, r) in zip(valid, boxes):
        v[:, t:b, left:r] = 1
    s, cam_w, cam_p = literal_forward(tiny_model, x, F.interpolate(valid, (4, 4)) * y21)
    xs = F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=True)
    ss, cam_ws, _ = literal_forward(tiny_model, xs, F.interpolate(valid, (2, 2)) * y21)
    loss_cls = (F.multilabel_soft_margin_loss(s, y) + F.multilabel_soft_margin_loss(ss, y)) / 2
    dc = tiny_model.loss_msdw.dc
    p_norm = cam_p / (F.adaptive_max_pool2d(cam_p, 1) + 1e-5)
    loss_p = 1.6 * torch.mean(torch.abs(cam_w - p_norm) *
                              torch.cat([torch.ones(1), dc]).view(1, -1, 1, 1))
    a = F.interpolate(cam_w, scale_factor=0.5, mode='bilinear', align_corners=True) * y21
    loss_w = 0.8 * torch.mean(torch.abs(a[:, 1:] - cam_ws[:, 1:] * y21[:, 1:]) *
                              dc.view(1, -1, 1, 1))
    torch.testing.assert_close(ours['loss_cls'], loss_cls)
    torch.testing.assert_close(ours['loss_dw_p'], loss_p)
    torch.testing.assert_close(ours['loss_dw_w'], loss_w)


def test_inference_scale_matches_literal_flip_merge(tiny_model):
    tiny_model.eval()
    torch.manual_seed(4)
    image = torch.randn(1, 3, 70, 90)
    for label in ([1., 1, 1, 1, 1], [1., 0, 1, 1, 0]):
        label = torch.tensor(label).view(1, 5, 1, 1)
        with torch.no_grad():
            cam_w, cam_p = tiny_model._predict_scale(image, label)
            pair = torch.cat([image, image.flip(-1)])
            _, ref_w, ref_p = literal_forward(tiny_model, pair, torch.ones(1, 1, 1, 1),
                                              flip_merge=True, label=label)
        torch.testing.assert_close(cam_w, ref_w)
        torch.testing.assert_close(cam_p, ref_p, atol=1e-5, rtol=1e-4)
        if label.all():
            assert cam_p.abs().sum() > 0


def test_predict_matches_literal_multi_scale_sum_over_every_channel(tiny_model):
    """Every channel resized, summed, max-normalised and label-masked, then the
    background rule and the argmax over all classes (predict skips the absent ones)."""
    tiny_model.eval()
    tiny_model.test_cfg.update(scales=(1.0, 0.5, 1.5))
    torch.manual_seed(5)
    images = torch.randn(2, 3, 40, 52)
    labels = [[0., 1, 0, 0], [1., 0, 0, 1]]
    samples = [SegDataSample(metainfo=dict(cls_label=label, img_shape=(40, 52),
                                           ori_shape=(40, 52))) for label in labels]
    with torch.no_grad():
        results = tiny_model.predict(images, samples)
        for index, label in enumerate(labels):
            mask = torch.tensor([1.] + label).view(1, 5, 1, 1)
            total = 0
            for scale in (1.0, 0.5, 1.5):
                size = (round(40 * scale), round(52 * scale))
                image = images[index:index + 1]
                scaled = image if scale == 1.0 else tiny_model._rescale(image, size)
                pair = torch.cat([scaled, scaled.flip(-1)])
                _, cam_w, cam_p = literal_forward(tiny_model, pair, torch.ones(1, 1, 1, 1),
                                                  flip_merge=True, label=mask)
                total = total + F.interpolate(torch.cat([cam_w, cam_p], 1), (40, 52),
                                              mode='bilinear', align_corners=False)
            total = total / (F.adaptive_max_pool2d(total, 1) + 1e-5)
            ref_w, ref_p = (m * mask for m in total.chunk(2, dim=1))
            rule = [torch.cat([m[:, :1] + 0.4, 2 * m[:, 1:]], 1) for m in (ref_w, ref_p)]
            combined = (rule[0] + rule[1]) * mask
            result = results[index]
            torch.testing.assert_close(result.cam_w.data, ref_w[0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(result.cam_p.data, ref_p[0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(result.seg_logits.data, combined[0], atol=1e-5, rtol=1e-4)
            expected = combined[0].argmax(0, keepdim=True)
            assert (result.pred_sem_seg.data != expected).float().mean() < 1e-3
            assert set(result.pred_sem_seg.data.unique().tolist()) <= \
                {0} | {c + 1 for c, y in enumerate(label) if y}
