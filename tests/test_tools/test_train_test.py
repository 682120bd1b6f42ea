# Copyright (c) mmsfc contributors. All rights reserved.
"""tools/train.py, tools/test.py and tools/dist_train.sh on the toy config."""
import contextlib
import functools
import glob
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_from_local

from conftest import REPO_ROOT, TOY_CONFIG, DeviceReads, load_tool
from mmsfc.testing import TOY_CLASSES, run_on_free_port


def data_options(root, *extra):
    """One option moves every dataloader (train, val, test, the pseudo-label hook's)."""
    return ['--data-root', root] + (['--cfg-options', *extra] if extra else [])


def run_cli(args, timeout=300):
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable] + args, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def newest_log(work_dir):
    with open(max(glob.glob(osp.join(work_dir, '*', '*.log')), key=osp.getmtime)) as f:
        return f.read()


def weights_only_by_default(monkeypatch):
    """Make torch.load behave as in torch >= 2.6 (weights_only=True by default)."""
    original = torch.load

    @functools.wraps(original)
    def load(*args, **kwargs):
        kwargs.setdefault('weights_only', True)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', load)


@pytest.mark.slow
def test_train_resume_and_test_with_weights_only_torch(toy_voc, tmp_path, monkeypatch):
    weights_only_by_default(monkeypatch)
    train, test = load_tool('train'), load_tool('test')
    work_dir = str(tmp_path / 'work')
    options = data_options(toy_voc, 'default_hooks.checkpoint.interval=2',
                           'default_hooks.logger.interval=1')
    train.main([TOY_CONFIG, '--work-dir', work_dir, *options, 'train_cfg.max_iters=2',
                'experiment_name=first'])
    first = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(first)
    # mmengine's own loader fails on its checkpoints under weights_only=True ...
    with pytest.raises(pickle.UnpicklingError):
        load_from_local(first, map_location='cpu')

    # ... while --resume (through mmsfc's loader) continues from iteration 2.
    train.main([TOY_CONFIG, '--work-dir', work_dir, '--resume', *options,
                'train_cfg.max_iters=4', 'experiment_name=resumed'])
    resumed = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu',
                         weights_only=False)
    assert resumed['meta']['iter'] == 4
    log = newest_log(work_dir)
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'CAMToPseudoLabelHook: out_dir is not set, no pseudo labels made' in log
    # one line for the frozen parameters instead of one warning each; DC with class names
    assert 'is skipped since its requires_grad=False' not in log
    assert re.search(r'\d+ frozen parameters \(requires_grad=False\) are not optimised', log)
    assert 'N_IBR=2, C_IBR=3, N_iter=6): aeroplane=' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [2/4]' not in log
    # the resumed run equals an uninterrupted one: same IBR batches, crops, LR
    straight_dir = str(tmp_path / 'straight')
    train.main([TOY_CONFIG, '--work-dir', straight_dir, *options, 'train_cfg.max_iters=4',
                'experiment_name=straight'])
    straight = torch.load(osp.join(straight_dir, 'iter_4.pth'), map_location='cpu',
                          weights_only=False)
    for key, value in straight['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value, msg=key)

    # the config dumped into the work dir names the new root everywhere and is testable
    dumped = osp.join(work_dir, osp.basename(TOY_CONFIG))
    with open(dumped) as f:
        text = f.read()
    assert 'data/toy_voc' not in text
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert Config.fromfile(dumped)[loader].dataset.data_root == toy_voc
    assert Config.fromfile(dumped).custom_hooks[1].dataloader.dataset.data_root == toy_voc
    show_dir = str(tmp_path / 'show')
    test.main([dumped, osp.join(work_dir, 'iter_4.pth'), '--work-dir',
               str(tmp_path / 'test'), '--show-dir', show_dir,
               '--cfg-options', 'experiment_name=tested'])
    test_log = newest_log(str(tmp_path / 'test'))
    assert re.search(r'Iter\(test\) \[8/8\].*mIoU: \d+\.\d+', test_log)
    # --show-dir draws every one of the 8 images, where its help says
    drawn = sorted(os.listdir(osp.join(show_dir, 'vis_data', 'vis_image')))
    assert drawn == [f'test_2000_{i:06d}.jpg_4.png' for i in range(8)], drawn  # iteration 4


@pytest.mark.slow
def test_dist_train_two_processes_on_cpu(toy_voc, tmp_path):
    work_dir = str(tmp_path / 'dist')
    result = run_on_free_port(
        lambda port: ['bash', 'tools/dist_train.sh', TOY_CONFIG, '2', '--work-dir', work_dir,
                      *data_options(toy_voc, 'train_cfg.max_iters=4',
                                    'default_hooks.checkpoint.interval=4')],
        cwd=REPO_ROOT, timeout=300,
        env=lambda port: dict(os.environ, PORT=str(port), PYTHONWARNINGS='ignore'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    log = newest_log(work_dir)
    # mmengine logs the world size as 'GPU number', also for CPU processes
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    # 8 validation images over 2 ranks: 4 iterations each
    assert 'Iter(val) [4/4]' in log
    # the toy batch, 4 + 2 IBR, is the total over both processes; DC's N_IBR follows it,
    # and N_iter = 24 training images // 4 (the total, not divided by the 2 processes again)
    assert '2 re-sampled per step (N_IBR=2, C_IBR=3, N_iter=6)' in log


@pytest.mark.slow
def test_missing_config_is_a_one_line_error(tmp_path):
    result = run_cli(['tools/train.py', str(tmp_path / 'nope.py')])
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f'error: config file not found: {tmp_path}/nope.py'
    assert 'Traceback' not in result.stderr
    result = run_cli(['tools/test.py', TOY_CONFIG, str(tmp_path / 'none.pth')])
    assert 'error: checkpoint file not found' in result.stderr and 'Traceback' not in result.stderr


@pytest.mark.slow
def test_amp_without_a_gpu_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')  # a machine without a GPU
    result = run_cli(['tools/train.py', TOY_CONFIG, '--work-dir', str(tmp_path),
                      '--amp-dtype', 'bfloat16'])
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        'error: AMP training (--amp, --amp-dtype or an AmpOptimWrapper config) needs a GPU: '
        "mmengine's AmpOptimWrapper refuses the cpu device of this machine")


@pytest.mark.slow
def test_unknown_type_names_the_type(toy_voc, tmp_path):
    result = run_cli(['tools/train.py', TOY_CONFIG, '--work-dir', str(tmp_path),
                      *data_options(toy_voc, 'model.type=NoSuchClassifier')])
    assert result.returncode != 0
    assert 'NoSuchClassifier is not in the mmseg::model registry' in result.stderr


@pytest.mark.slow
def test_cam_to_pseudo_label_hook_after_training(toy_voc, tmp_path):
    hook_dataloader = dict(num_workers=0, dataset=dict(
        type='SFCVOCDataset', data_root=toy_voc, metainfo=dict(classes=TOY_CLASSES),
        cls_label_file='cls_labels.npy', ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs', meta_keys=('img_path', 'cls_label'))]))
    config = tmp_path / 'with_pseudo_labels.py'
    config.write_text(f"_base_ = '{TOY_CONFIG}'\n"
                      "custom_hooks = [dict(type='DistributionCoefficientHook'),\n"
                      "                dict(type='CAMToPseudoLabelHook', out_dir='pseudo',\n"
                      f"                     dataloader={hook_dataloader!r})]\n")
    work_dir = str(tmp_path / 'work')
    load_tool('train').main([str(config), '--work-dir', work_dir,
                             *data_options(toy_voc, 'train_cfg.max_iters=2',
                                           'experiment_name=hook')])
    assert len(glob.glob(osp.join(work_dir, 'pseudo', 'labels', '*.png'))) == 8
    assert len(glob.glob(osp.join(work_dir, 'pseudo', 'cams', '*.npz'))) == 8
    log = newest_log(work_dir)
    assert re.search(r'pseudo_label/mIoU: \d', log) and re.search(r'cam/mIoU_final: \d', log)


@pytest.mark.slow
def test_dist_test_and_pseudo_labels_with_two_processes(toy_voc, tmp_path):
    """tools/dist_test.sh and torchrun make_pseudo_labels.py: the results of one process."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    options = data_options(toy_voc)
    env = dict(os.environ, PYTHONWARNINGS='ignore')

    result = run_on_free_port(
        lambda port: ['bash', 'tools/dist_test.sh', TOY_CONFIG, ckpt, '2', '--work-dir',
                      str(tmp_path / 'test'), *options],
        cwd=REPO_ROOT, timeout=300, env=lambda port: dict(env, PORT=str(port)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r'Iter\(test\) \[4/4\].*mIoU', newest_log(str(tmp_path / 'test')))

    single, double = str(tmp_path / 'single'), str(tmp_path / 'double')
    tool = ['tools/make_pseudo_labels.py', TOY_CONFIG, ckpt, '--no-eval']
    result = run_cli([*tool, '--out-dir', single, *options])
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_on_free_port(
        lambda port: [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                      '--master_port', str(port), *tool, '--out-dir', double,
                      '--launcher', 'pytorch', '--crf-workers', '2', *options],
        cwd=REPO_ROOT, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for sub in ('cams', 'labels'):
        names = sorted(os.listdir(osp.join(single, sub)))
        assert len(names) == 24 and names == sorted(os.listdir(osp.join(double, sub)))
    for name in os.listdir(osp.join(single, 'labels')):
        with open(osp.join(single, 'labels', name), 'rb') as a, \
                open(osp.join(double, 'labels', name), 'rb') as b:
            assert a.read() == b.read(), name


@pytest.mark.slow
def test_test_tool_warns_when_checkpoint_keys_do_not_match(toy_voc, tmp_path):
    """A checkpoint under other key names loads nothing: the log says how much matched."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.model.backbone.init_cfg = None
    state = MODELS.build(cfg.model).state_dict()
    ckpt = str(tmp_path / 'renamed.pth')
    renamed = {('resnet.' + k if k.startswith('backbone.') else k): v for k, v in state.items()}
    torch.save(dict(state_dict=renamed), ckpt)
    num_backbone = sum(k.startswith('backbone.') for k in state)
    load_tool('test').main([TOY_CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'),
                            *data_options(toy_voc, 'experiment_name=renamed')])
    log = newest_log(str(tmp_path / 'test'))
    matched = len(state) - num_backbone
    assert f'CHECKPOINT MISMATCH: only {matched} of {len(state)} model tensors' in log


@pytest.mark.slow
def test_gt_selected_checkpoint_by_w_plus_p(toy_voc, tmp_path):
    """save_best on the sum mIoU(M_W) + mIoU(M_P), as the _gt-selected SFC config."""
    work_dir = str(tmp_path / 'best')
    load_tool('train').main([TOY_CONFIG, '--work-dir', work_dir, *data_options(
        toy_voc, 'train_cfg.max_iters=4', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.save_best=mIoU_w_plus_p',
        'default_hooks.checkpoint.rule=greater', 'experiment_name=best')])
    assert glob.glob(osp.join(work_dir, 'best_mIoU_w_plus_p_iter_*.pth'))
    log = newest_log(work_dir)
    assert len(re.findall(r'mIoU_w_plus_p: \d', log)) == 2


@pytest.mark.parametrize('argv, dtype, loss_scale', [
    (['--amp'], None, 'dynamic'),  # mmseg's float16 AMP
    (['--amp-dtype', 'bfloat16'], 'bfloat16', dict(enabled=False)),
    (['--amp', '--amp-dtype', 'float16'], 'float16', 'dynamic'),
    (['--amp', '--cfg-options', 'optim_wrapper.dtype=bfloat16'], 'bfloat16',
     dict(enabled=False)),
    (['--amp-dtype', 'bfloat16', '--cfg-options', 'optim_wrapper.loss_scale=512.0'],
     'bfloat16', 512.0),  # a scale the config asks for is kept
])
def test_amp_options_choose_the_dtype_and_the_loss_scale(argv, dtype, loss_scale, tmp_path):
    train = load_tool('train')
    cfg = train.build_config(train.parse_args([TOY_CONFIG, '--work-dir', str(tmp_path), *argv]))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.get('dtype') == dtype
    assert cfg.optim_wrapper.loss_scale == loss_scale
    assert cfg.optim_wrapper.optimizer.type == 'SGD'  # the rest of the wrapper untouched


def test_bfloat16_amp_wrapper_updates_as_the_plain_wrapper_under_autocast(
        tiny_model, tmp_path, monkeypatch):
    """The wrapper that ``--amp-dtype bfloat16`` builds (the config's fused SGD and
    gradient clip, no loss scaler) updates the weights exactly as the plain
    OptimWrapper does under bfloat16 autocast, and reads no more values back from
    the device in a step than it (the one read of both is mmengine's log of the
    gradient norm). mmengine's AmpOptimWrapper refuses to be built without a GPU:
    its guard is lifted here; CPU autocast runs the same code."""
    import copy

    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    from mmseg.structures import SegDataSample
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    train = load_tool('train')
    cfg = train.build_config(train.parse_args([TOY_CONFIG, '--work-dir', str(tmp_path),
                                               '--amp-dtype', 'bfloat16']))
    assert cfg.optim_wrapper.optimizer.fused and cfg.optim_wrapper.clip_grad
    samples = [SegDataSample(metainfo=dict(cls_label=label)) for label in
               ([1, 0, 1, 0], [0, 1, 0, 0])]
    inputs = torch.randn(2, 3, 64, 64)
    models, reads = {}, {}
    for name in ('bfloat16', 'plain'):
        model = models[name] = copy.deepcopy(tiny_model).train()
        wrapper_cfg = dict(cfg.optim_wrapper)
        if name == 'plain':  # the same wrapper without AMP
            wrapper_cfg = dict(wrapper_cfg, type='OptimWrapper')
            del wrapper_cfg['dtype'], wrapper_cfg['loss_scale']
        wrapper = build_optim_wrapper(model, wrapper_cfg)
        for step in range(2):
            # the first step plans the resize: only the second is watched
            with DeviceReads() if step else contextlib.nullcontext() as record:
                if name == 'plain':
                    with torch.autocast('cpu', dtype=torch.bfloat16):
                        loss = sum(model.loss(inputs, samples).values())
                else:
                    with wrapper.optim_context(model):
                        loss = sum(model.loss(inputs, samples).values())
                wrapper.update_params(loss)
        reads[name] = record.calls
    assert reads['bfloat16'] == reads['plain'] == ['_local_scalar_dense']
    assert not torch.equal(models['plain'].classifier.weight, tiny_model.classifier.weight)
    for (key, value), plain in zip(models['bfloat16'].state_dict().items(),
                                   models['plain'].state_dict().values()):
        torch.testing.assert_close(value, plain, rtol=0, atol=0, msg=key)
