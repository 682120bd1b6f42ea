# Copyright (c) mmsfc contributors. All rights reserved.
"""Distributed training on CPUs (gloo) with mmengine 0.10.

mmengine 0.10.7 cannot start a CPU-only distributed run by itself: its
``init_dist`` for the ``pytorch`` launcher calls ``torch.cuda.set_device``,
and ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP, which a
CPU module rejects. :func:`setup_cpu_distributed` fixes both from the tools:
it initialises the gloo process group before the Runner is built (the
Runner then skips its own initialisation) and selects
:class:`SFCDistributedDataParallel` as the model wrapper. On GPUs nothing
changes.
"""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmseg.registry import MODEL_WRAPPERS
from torch.distributed import distributed_c10d


@MODEL_WRAPPERS.register_module()
class SFCDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps modules on the CPU.

    ``device_ids`` must be None for a CPU module; this wrapper drops the
    ``device_ids`` the Runner passes when the module has no CUDA parameter.
    """

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        on_cuda = any(p.is_cuda for p in module.parameters())
        super().__init__(module=module, device_ids=device_ids if on_cuda else None, **kwargs)


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` and the process group for a CPU run under ``launcher``.

    A no-op without a launcher or when CUDA is available. Otherwise it sets
    the gloo backend (unless the config names another one), the CPU-capable
    DDP wrapper (unless the config has its own ``model_wrapper_cfg``), and
    initialises the default process group from the ``torchrun`` environment.

    Args:
        cfg (Config): The config, modified in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise NotImplementedError(f'CPU distributed runs support the pytorch launcher '
                                  f'(torchrun), not {launcher!r}')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend', 'nccl')
    dist_cfg['backend'] = 'gloo' if backend == 'nccl' else backend
    if cfg.get('model_wrapper_cfg') is None:
        # Runner.wrap_model looks the type up in mmengine's root registry: scope it.
        cfg.model_wrapper_cfg = dict(type='mmseg.SFCDistributedDataParallel')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend=dist_cfg['backend'],
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))


def teardown_distributed() -> None:
    """Leave the process groups together, then destroy them without deadlock.

    Every rank waits at a barrier before the groups are destroyed, so that no
    rank closes its sockets while another still uses them. Without
    ``destroy_process_group`` a gloo rank may abort at exit ("terminate called
    without an active exception"): a gloo worker thread that still holds the
    tensors of the last collective frees them while the interpreter shuts
    down. Destroying the group is not safe either before
    pytorch/pytorch#154976 (torch 2.5 here): the ``ProcessGroup`` wrapper is
    destroyed with the GIL held, and the gloo backend's destructor joins its
    worker threads, one of which may be waiting for the GIL to free a tensor
    created in Python (the outputs of ``all_gather_object``): a deadlock (3
    of 3 runs of 300 init / ``all_gather_object`` / teardown rounds hung
    here). So the backends of every group are held while the groups are
    destroyed, and the last reference is dropped afterwards: the gloo and
    NCCL backends release the GIL in their destructors, so the worker
    threads finish.

    A no-op when no process group exists. Call it after a successful run
    only: a barrier after one rank failed would wait for ever.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    backends = _backends_of_all_groups()
    torch_dist.destroy_process_group()
    del backends  # destroys the backends with the GIL released


def _backends_of_all_groups() -> list:
    """The backend objects (``ProcessGroupGloo``, ``ProcessGroupNCCL``, ...) of
    every process group, whatever device types they serve."""
    backends = []
    for group in list(distributed_c10d._world.pg_map):
        for device in ('cpu', 'cuda'):
            try:
                backends.append(group._get_backend(torch.device(device)))
            except RuntimeError:  # the group has no backend for this device
                pass
    return backends
