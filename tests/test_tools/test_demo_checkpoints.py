# Copyright (c) mmsfc contributors. All rights reserved.
"""tools/demo.py loads local checkpoints as the other tools do (no environment variable)."""
import pytest
from mmengine.runner import CheckpointLoader

from conftest import load_tool
from mmsfc.engine.checkpoint import load_from_local_trusted


def test_demo_main_runs_under_the_trusted_local_loader(monkeypatch):
    demo = load_tool('demo')
    seen = []

    def stop(argv=None):  # the first thing main does; record the loader, then leave
        seen.append(CheckpointLoader._get_checkpoint_loader('work_dirs/x/iter_1.pth'))
        raise SystemExit(0)

    monkeypatch.setattr(demo, 'parse_args', stop)
    before = CheckpointLoader._get_checkpoint_loader('work_dirs/x/iter_1.pth')
    for _ in range(2):  # the decorator scopes every call, not only the first
        with pytest.raises(SystemExit):
            demo.main([])
    assert seen == [load_from_local_trusted, load_from_local_trusted]
    assert CheckpointLoader._get_checkpoint_loader('work_dirs/x/iter_1.pth') is before
    assert before is not load_from_local_trusted
