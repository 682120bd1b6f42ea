# Copyright (c) mmsfc contributors. All rights reserved.
"""tools/{slurm,dist}_{train,test}.sh: argument handling and the command each would run.

No slurm here: a fake ``srun`` (and, for the torchrun launchers, a fake ``python``)
on PATH records its argv and PYTHONPATH instead of running anything.
"""
import os
import os.path as osp
import stat
import subprocess

import pytest

from conftest import REPO_ROOT

RECORDER = """#!/usr/bin/env bash
printf '%s\\0' "$@" > "$RECORD"
printf '%s' "${PYTHONPATH:-}" > "$RECORD.pythonpath"
"""


def run_launcher(tmp_path, script, args, fake='srun', **env):
    """Run ``tools/<script>`` with ``fake`` on PATH; return (result, argv, PYTHONPATH)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    recorder = bin_dir / fake
    recorder.write_text(RECORDER)
    recorder.chmod(recorder.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / 'argv'
    full_env = {k: v for k, v in os.environ.items()
                if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS', 'NNODES',
                             'NODE_RANK', 'PORT', 'MASTER_ADDR', 'PYTHONPATH')}
    full_env.update(env, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', RECORD=str(record))
    result = subprocess.run(['bash', osp.join(REPO_ROOT, 'tools', script), *args],
                            cwd=tmp_path, env=full_env, capture_output=True, text=True,
                            timeout=60)
    if not record.exists():
        return result, None, None
    argv = record.read_text().split('\0')[:-1]
    return result, argv, (tmp_path / 'argv.pythonpath').read_text()


def srun_options(argv):
    """``--key=value`` options of srun before the command, and the command."""
    python = argv.index('python')
    return argv[:python], argv[python:]


def test_slurm_train_runs_train_py_with_the_slurm_launcher(tmp_path):
    result, argv, pythonpath = run_launcher(
        tmp_path, 'slurm_train.sh',
        ['gpu', 'sfc', 'configs/x.py', '--work-dir', 'work dirs/x', '--cfg-options', 'a=1'])
    assert result.returncode == 0, result.stderr
    options, command = srun_options(argv)
    assert options == ['-p', 'gpu', '--job-name=sfc', '--gres=gpu:1', '--ntasks=1',
                       '--ntasks-per-node=1', '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert command[:3] == ['python', '-u', osp.join(REPO_ROOT, 'tools', 'train.py')]
    # the extra arguments pass through unsplit, after the launcher
    assert command[3:] == ['configs/x.py', '--launcher', 'slurm', '--work-dir', 'work dirs/x',
                           '--cfg-options', 'a=1']
    assert osp.samefile(pythonpath.split(os.pathsep)[0], REPO_ROOT)


def test_slurm_train_reads_gpus_cpus_and_srun_args(tmp_path):
    result, argv, _ = run_launcher(tmp_path, 'slurm_train.sh', ['p', 'j', 'c.py'], GPUS='16',
                                   CPUS_PER_TASK='8', SRUN_ARGS='--quotatype=auto --time=60')
    assert result.returncode == 0, result.stderr
    options, _ = srun_options(argv)
    # 16 tasks: 8 GPUs per node unless told otherwise; SRUN_ARGS split into options
    assert options == ['-p', 'p', '--job-name=j', '--gres=gpu:8', '--ntasks=16',
                       '--ntasks-per-node=8', '--cpus-per-task=8', '--kill-on-bad-exit=1',
                       '--quotatype=auto', '--time=60']
    result, argv, _ = run_launcher(tmp_path, 'slurm_train.sh', ['p', 'j', 'c.py'], GPUS='4',
                                   GPUS_PER_NODE='2')
    options, _ = srun_options(argv)
    assert '--gres=gpu:2' in options and '--ntasks=4' in options
    assert '--ntasks-per-node=2' in options


def test_slurm_test_runs_test_py_with_config_and_checkpoint(tmp_path):
    result, argv, _ = run_launcher(tmp_path, 'slurm_test.sh',
                                   ['gpu', 'eval', 'c.py', 'iter_3966.pth', '--out', 'o'],
                                   GPUS='4')
    assert result.returncode == 0, result.stderr
    options, command = srun_options(argv)
    assert options == ['-p', 'gpu', '--job-name=eval', '--gres=gpu:4', '--ntasks=4',
                       '--ntasks-per-node=4', '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert command == ['python', '-u', osp.join(REPO_ROOT, 'tools', 'test.py'), 'c.py',
                       'iter_3966.pth', '--launcher', 'slurm', '--out', 'o']


@pytest.mark.parametrize('script,args', [('slurm_train.sh', ['gpu', 'job']),
                                         ('slurm_test.sh', ['gpu', 'job', 'c.py'])])
def test_slurm_launchers_refuse_missing_arguments(tmp_path, script, args):
    result, argv, _ = run_launcher(tmp_path, script, args)
    assert result.returncode == 2 and argv is None  # srun was never called
    assert 'usage:' in result.stderr and 'PARTITION JOB_NAME CONFIG' in result.stderr


def test_dist_train_and_test_follow_mmseg_interface(tmp_path):
    result, argv, _ = run_launcher(tmp_path, 'dist_train.sh', ['c.py', '4', '--amp'],
                                   fake='python', PORT='29555')
    assert result.returncode == 0, result.stderr
    assert argv == ['-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
                    '--master_addr=127.0.0.1', '--nproc_per_node=4', '--master_port=29555',
                    osp.join(REPO_ROOT, 'tools', 'train.py'), 'c.py', '--launcher', 'pytorch',
                    '--amp']
    result, argv, _ = run_launcher(tmp_path, 'dist_test.sh', ['c.py', 'ck.pth', '2', '--out', 'o'],
                                   fake='python', NNODES='2', NODE_RANK='1',
                                   MASTER_ADDR='10.0.0.1')
    assert result.returncode == 0, result.stderr
    assert argv == ['-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
                    '--master_addr=10.0.0.1', '--nproc_per_node=2', '--master_port=29500',
                    osp.join(REPO_ROOT, 'tools', 'test.py'), 'c.py', 'ck.pth', '--launcher',
                    'pytorch', '--out', 'o']
