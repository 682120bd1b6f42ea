# Copyright (c) mmsfc contributors. All rights reserved.
"""setup.py's build puts configs, tools and the model index where openmim looks for them
(``mmsfc/.mim/``), so that ``mim train / test / search mmsfc`` work on an installed mmsfc."""
import os.path as osp
import subprocess
import sys

import pytest
import yaml

from conftest import REPO_ROOT


@pytest.fixture(scope='module')
def mim_dir(tmp_path_factory):
    build_lib = tmp_path_factory.mktemp('build_lib')
    subprocess.run([sys.executable, 'setup.py', '-q', 'build_py', '--build-lib', str(build_lib)],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    return osp.join(build_lib, 'mmsfc', '.mim')


def test_build_carries_tools_configs_and_index(mim_dir):
    for name in ('tools/train.py', 'tools/test.py', 'tools/make_pseudo_labels.py',
                 'demo/image_demo.py', 'model-index.yml', 'configs/_base_/models/sfc_r50.py'):
        assert osp.isfile(osp.join(mim_dir, name)), name
    assert not osp.exists(osp.join(mim_dir, 'tests'))  # test-only configs stay out


def test_model_index_in_the_build_loads_as_mim_reads_it(mim_dir):
    load = pytest.importorskip('modelindex.load_model_index').load  # mim search's reader
    index = load(osp.join(mim_dir, 'model-index.yml'))
    with open(osp.join(REPO_ROOT, 'model-index.yml')) as f:
        metafiles = yaml.safe_load(f)['Import']
    expected = []
    for metafile in metafiles:
        with open(osp.join(REPO_ROOT, metafile)) as f:
            expected += [m['Name'] for m in yaml.safe_load(f)['Models']]
    assert [model.name for model in index.models] == expected
    for model in index.models:  # mim resolves a config name inside the package
        assert osp.isfile(osp.join(mim_dir, model.config)), model.config


def test_mim_finds_each_indexed_config_by_name(mim_dir):
    mim_utils = pytest.importorskip('mim.utils')
    with open(osp.join(mim_dir, 'model-index.yml')) as f:
        metafiles = yaml.safe_load(f)['Import']
    for metafile in metafiles:
        with open(osp.join(mim_dir, metafile)) as f:
            for model in yaml.safe_load(f)['Models']:
                found = mim_utils.recursively_find(osp.dirname(mim_dir),
                                                   osp.basename(model['Config']),
                                                   followlinks=True)
                assert [osp.relpath(p, mim_dir) for p in found] == [model['Config']]
