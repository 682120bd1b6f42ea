# Copyright (c) mmsfc contributors. All rights reserved.
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TOY_IRN = osp.join(REPO_ROOT, 'tests/data/configs/irn_r18_1xb4-3ep_toyvoc-64x64.py')


def _toy_batch():
    """Two 64x64 crops with labels on the 16x16 grid (top rows unknown), two 52x60 images."""
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 64, 64)
    label = torch.randint(0, 5, (2, 1, 16, 16))
    label[:, :, :4] = 255
    samples = [SegDataSample(gt_sem_seg=PixelData(data=one)) for one in label]
    images = [torch.randint(0, 255, (3, 52, 60), dtype=torch.uint8) for _ in range(2)]
    return inputs, samples, images


def test_backbone_is_frozen_and_predict_gives_edge_maps_on_the_stride4_grid():
    cfg = Config.fromfile(TOY_IRN)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not model.backbone.training  # fixed BN statistics
    model.eval()
    data = dict(inputs=[torch.randint(0, 255, (3, 37, 50), dtype=torch.uint8)],
                data_samples=[SegDataSample(metainfo=dict(img_shape=(37, 50)))])
    sample = model.test_step(data)[0]
    edge = sample.edge_map.data
    assert edge.shape == (1, 10, 13)
    assert torch.all((edge > 0) & (edge < 1))


def test_flip_averaged_edge_map_is_flip_equivariant():
    cfg = Config.fromfile(TOY_IRN)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    image = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)

    def edge(img):
        data = dict(inputs=[img], data_samples=[SegDataSample(metainfo=dict(img_shape=(64, 64)))])
        return model.test_step(data)[0].edge_map.data

    torch.testing.assert_close(edge(image.flip(-1)), edge(image).flip(-1))
    model.test_cfg['flip'] = False
    assert not torch.allclose(edge(image.flip(-1)), edge(image).flip(-1))


def test_training_steps_reduce_the_loss_and_leave_the_backbone(toy_voc):
    cfg = Config.fromfile(TOY_IRN)
    cfg.train_dataloader.dataset.data_root = toy_voc
    cfg.work_dir = osp.join(toy_voc, 'work_irn')
    cfg.randomness = dict(seed=0)
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {g['lr'] for g in optim_wrapper.optimizer.param_groups if g['params']}
    assert {0.1, 1.0} <= lrs  # displacement branch x10
    data = next(iter(runner.train_dataloader))
    assert data['data_samples'][0].gt_sem_seg.data.shape == (1, 16, 16)
    losses = []
    for _ in range(20):
        log = model.train_step(data, optim_wrapper)
        losses.append(float(log['loss']))
    # lr 1.0 on the displacement branch makes single steps noisy: compare means
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:2]) / 2
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key


def test_folded_backbone_gives_the_same_losses_grads_and_edge_maps():
    """The frozen backbone's folded copy (opt-in) against the backbone."""
    from ..test_classifiers.test_sfc_fast_path import randomize_batch_norms
    cfg = Config.fromfile(TOY_IRN)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert not model.train_cfg['fuse_bn'] and not model.test_cfg['fuse_bn']  # the defaults
    randomize_batch_norms(model, seed=5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    bn_calls = []
    for bn in model.backbone.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.register_forward_hook(lambda *args: bn_calls.append(1))
    inputs, samples, images = _toy_batch()
    metas = [SegDataSample(metainfo=dict(img_shape=(52, 60))) for _ in range(2)]

    def run(fuse_bn):
        model.train_cfg['fuse_bn'] = model.test_cfg['fuse_bn'] = fuse_bn
        model.train()
        model.zero_grad()
        losses = model.loss(inputs, samples)
        sum(losses.values()).backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()
                 if p.grad is not None}
        model.eval()
        edges = [s.edge_map.data for s in model.test_step(
            dict(inputs=images, data_samples=copy.deepcopy(metas)))]
        return losses, grads, edges

    plain_losses, plain_grads, plain_edges = run(False)
    assert bn_calls  # the backbone itself ran
    run(True)  # builds the folded copy
    bn_calls.clear()
    losses, grads, edges = run(True)
    assert not bn_calls  # the copy ran in training and inference, without BatchNorms
    for name in plain_losses:
        torch.testing.assert_close(losses[name], plain_losses[name], rtol=1e-5, atol=1e-6)
    assert grads.keys() == plain_grads.keys() and len(grads) > 10
    assert not any(name.startswith('backbone.') for name in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], plain_grads[name], rtol=1e-4, atol=1e-6)
    for edge, plain_edge in zip(edges, plain_edges):
        torch.testing.assert_close(edge, plain_edge, rtol=0, atol=1e-5)
    for name, value in model.state_dict().items():  # weights and statistics untouched
        assert torch.equal(value, state[name]), name
    assert copy.deepcopy(model)._folded_backbone._module is None  # transient


def test_without_displacement_branch_the_edge_branch_trains_exactly_as_with_it():
    """``displacement_head=None``: the same edge weights after SGD steps, the same edge maps."""
    cfg = Config.fromfile(TOY_IRN)
    inputs, samples, images = _toy_batch()
    results = {}
    for with_branch in (True, False):
        model_cfg = copy.deepcopy(cfg.model)
        if not with_branch:
            model_cfg.displacement_head = None
        torch.manual_seed(0)  # the edge head is built before the displacement head
        model = MODELS.build(model_cfg)
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        for _ in range(3):
            losses = model.loss(inputs, samples)
            optim_wrapper.update_params(sum(v for k, v in losses.items() if 'loss' in k))
        model.eval()
        edges = [s.edge_map.data for s in model.test_step(dict(
            inputs=images, data_samples=[SegDataSample(metainfo=dict(img_shape=(52, 60)))
                                         for _ in images]))]
        results[with_branch] = (set(losses), dict(model.edge_head.state_dict()), edges)
    assert 'loss_disp' in results[True][0]
    assert results[False][0] == {'loss_aff', 'aff_bg_pos', 'aff_fg_pos', 'aff_neg'}
    with_state, without_state = results[True][1], results[False][1]
    assert with_state.keys() == without_state.keys()
    for key in with_state:
        assert torch.equal(with_state[key], without_state[key]), key
    for with_edge, without_edge in zip(results[True][2], results[False][2]):
        assert torch.equal(with_edge, without_edge)
    torch.manual_seed(0)
    initial = MODELS.build(copy.deepcopy(cfg.model)).edge_head.state_dict()
    changed = [k for k in initial if not torch.equal(initial[k], with_state[k])]
    assert any(k.endswith('weight') for k in changed)  # the steps trained the edge branch
