# Copyright (c) mmsfc contributors. All rights reserved.
"""Package metadata: version ranges, each admitting the pin of requirements.txt."""
import os.path as osp
import runpy
from unittest.mock import patch

from packaging.requirements import Requirement

from conftest import REPO_ROOT


def setup_kwargs():
    captured = {}
    with patch('setuptools.setup', lambda **kwargs: captured.update(kwargs)):
        runpy.run_path(osp.join(REPO_ROOT, 'setup.py'), run_name='__main__')
    return captured


def pinned_requirements():
    with open(osp.join(REPO_ROOT, 'requirements.txt')) as f:
        lines = [line.split('#', 1)[0].strip() for line in f]
    return [Requirement(line) for line in lines if line]


def test_install_requires_are_ranges_that_admit_the_pins():
    metadata = {req.name: req for req in map(Requirement, setup_kwargs()['install_requires'])}
    pins = pinned_requirements()
    assert {pin.name for pin in pins} == set(metadata)
    for pin in pins:
        specs = list(pin.specifier)
        if not specs:
            continue
        assert [s.operator for s in specs] == ['=='], f'{pin} is not an exact pin'
        version = specs[0].version
        assert metadata[pin.name].specifier.contains(version), (pin, metadata[pin.name])
    for name in ('torch', 'mmengine', 'mmcv', 'mmsegmentation'):
        operators = {s.operator for s in metadata[name].specifier}
        assert operators and '==' not in operators, metadata[name]
