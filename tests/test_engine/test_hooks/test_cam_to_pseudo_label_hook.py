# Copyright (c) mmsfc contributors. All rights reserved.
"""CAMToPseudoLabelHook runs stage 2 (or stage 3) after training, in the work directory."""
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmsfc.engine.hooks import CAMToPseudoLabelHook
from mmsfc.engine.hooks import cam_to_pseudo_label_hook as hook_module


class Recorder:
    """Stands in for PseudoLabelGenerator: records what the hook asks of it."""
    calls = []

    def __init__(self, out_dir, dataloader, **kwargs):
        self.args = (out_dir, dataloader, kwargs)

    def run(self, model):
        self.calls.append(('run', model, *self.args))
        return {'pseudo_label/mIoU': 50.0}

    def refine(self, model):
        self.calls.append(('refine', model, *self.args))
        return {'mask/mIoU': 60.0}


@pytest.fixture
def runner(tmp_path, monkeypatch):
    Recorder.calls = []
    monkeypatch.setattr(hook_module, 'PseudoLabelGenerator', Recorder)
    return SimpleNamespace(model='the model', work_dir=str(tmp_path),
                           cfg=Config(dict(test_dataloader=dict(dataset='test split'))),
                           logger=logging.getLogger('hook-test'))


def test_without_out_dir_nothing_is_made(runner):
    CAMToPseudoLabelHook().after_train(runner)
    assert Recorder.calls == []


def test_cam_mode_runs_stage_two_in_the_work_dir_on_the_test_split(runner):
    CAMToPseudoLabelHook(out_dir='pseudo', crf_alpha=0.5).after_train(runner)
    assert Recorder.calls == [('run', 'the model', osp.join(runner.work_dir, 'pseudo'),
                               dict(dataset='test split'), dict(crf_alpha=0.5))]


def test_irn_mode_refines_with_its_own_split_and_an_absolute_dir(runner, tmp_path):
    out = str(tmp_path / 'elsewhere')
    CAMToPseudoLabelHook(out_dir=out, mode='irn', dataloader=dict(dataset='mask split'),
                         walk=dict(beta=8)).after_train(runner)
    assert Recorder.calls == [('refine', 'the model', out, dict(dataset='mask split'),
                               dict(walk=dict(beta=8)))]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="'cam' or 'irn', got 'crf'"):
        CAMToPseudoLabelHook(out_dir='x', mode='crf')
