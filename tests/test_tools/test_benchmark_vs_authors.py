# Copyright (c) mmsfc contributors. All rights reserved.
"""``tools/misc/benchmark_vs_authors.py`` without the authors' code: its allocator switch."""
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT

# A fresh process each (mallopt changes the whole process): training steps of a
# small convolutional network on CPU, whose activations (0.5-4 MiB) glibc
# serves with mmap or from the top of its heap; prints the minor page faults of
# steps 3-8, when every tensor has been allocated (and freed) before.
STEPS = textwrap.dedent(f"""
    import importlib.util, sys, torch
    spec = importlib.util.spec_from_file_location(
        'bench', '{REPO_ROOT}/tools/misc/benchmark_vs_authors.py')
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    if sys.argv[1] == 'keep':
        bench.keep_freed_memory()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 64, 3, padding=1))
    images = torch.randn(2, 3, 128, 128)
    faults = []
    for _ in range(8):
        before = bench.minor_page_faults()
        net(images).square().mean().backward()
        faults.append(bench.minor_page_faults() - before)
    print(sum(faults[2:]))
""")


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc mallopt: Linux only')
def test_keep_freed_memory_reuses_freed_pages_instead_of_faulting_them_in():
    faults = {}
    for mode in ('default', 'keep'):
        run = subprocess.run([sys.executable, '-c', STEPS, mode], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        faults[mode] = int(run.stdout.split()[-1])
    # by default glibc gives large freed blocks back and faults them in again
    # (thousands of 4 KiB pages a step here); kept, later steps reuse them
    assert faults['default'] > 5000
    assert faults['keep'] < faults['default'] / 4
