"""Which process this is in a multi-process run, and how many there are.

Two sources, for two moments:

* before the process group exists (the runner locks its folder and opens its log before Lightning starts), the
  launcher's environment: torchrun sets ``RANK``; Lightning's own launcher, and a user starting one process per
  node by hand, set ``NODE_RANK`` and ``LOCAL_RANK``; SLURM sets ``SLURM_PROCID``. ``LOCAL_RANK`` alone is not
  the global rank: on 2 nodes x 1 process both processes have ``LOCAL_RANK=0``;
* once it exists, torch.distributed's group (:func:`world_size`, :func:`group_rank`).

The module depends on torch only, so the quantizer, the loaders and the runner share it without import cycles.
"""
from __future__ import annotations

import os

import torch.distributed as dist


def group_exists() -> bool:
    """Whether torch.distributed's process group is set up in this process."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the torch.distributed group; 1 outside one."""
    return dist.get_world_size() if group_exists() else 1


def group_rank() -> int:
    """This process's rank in the torch.distributed group; 0 outside one."""
    return dist.get_rank() if group_exists() else 0


def launcher_rank(processes_per_node: int | None = None) -> int:
    """This process's global rank from the launcher's environment (0 when nothing launched it).

    ``RANK`` (torchrun) is the global rank itself. Otherwise the rank is ``node * processes_per_node + local``
    from ``NODE_RANK`` (or torchrun's ``GROUP_RANK``) and ``LOCAL_RANK``, as Lightning numbers its processes
    (``processes_per_node``: the run's devices on one node); under SLURM without those, ``SLURM_PROCID``. Whatever
    ``processes_per_node`` is, only global rank 0 gets 0: a process on a node other than 0 never does.
    """
    env = os.environ
    if 'RANK' in env:
        return int(env['RANK'])
    node = env.get('NODE_RANK', env.get('GROUP_RANK'))
    local = env.get('LOCAL_RANK')
    if node is None and local is None and 'SLURM_PROCID' in env:
        return int(env['SLURM_PROCID'])
    node, local = int(node or 0), int(local or 0)
    per_node = max(1, int(processes_per_node or 1), local + 1)
    return node * per_node + local

