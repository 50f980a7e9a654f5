"""How many processes a run uses, on which devices, with which Lightning strategy (which process this is:
:mod:`openstl_hrvq.distributed_utils`).

The flags mean what they mean in OpenSTL, plus one of the plugin's:

* ``--gpus 0 1`` (OpenSTL's): the CUDA device ids of one node, one process each;
* ``--devices N``: N processes on the chosen accelerator, whatever it is (``--device cpu --devices 2``: two CPU
  processes over gloo; on CUDA, the first N GPUs);
* ``--num_nodes M``: M such nodes (set up by torchrun or SLURM);
* ``--dist`` (OpenSTL's): a distributed run; it fails with one line unless several processes run.

Under a launcher (``torchrun --nproc_per_node K``) the run takes K processes per node from it. A combination
that cannot work is refused with one line (:class:`~openstl_hrvq.errors.ConfigError`), never run silently on
one process.
"""
from __future__ import annotations

import os

import torch
from pytorch_lightning.strategies import StrategyRegistry

from openstl_hrvq.errors import ConfigError
from openstl_hrvq.method_registry import find_method

#: OpenSTL's default for ``--gpus``: given on every command line, so it cannot say "the user asked for GPUs".
DEFAULT_GPUS = [0]
#: Lightning's DDP strategies, and the suffix of their variants that tolerate parameters without a gradient.
DDP_STRATEGIES = ('ddp', 'ddp_spawn', 'ddp_fork', 'ddp_notebook')
UNUSED_PARAMETERS_SUFFIX = '_find_unused_parameters_true'
#: Any of these in the environment means a multi-node run was set up (torchrun, SLURM, or by hand).
NODE_LAUNCH_VARIABLES = ('TORCHELASTIC_RUN_ID', 'SLURM_NTASKS', 'NODE_RANK', 'MASTER_ADDR')


def launcher_processes() -> int | None:
    """Processes per node that a launcher (torchrun / torch.distributed.run) started, or None without one."""
    local_world = os.environ.get('LOCAL_WORLD_SIZE')
    return int(local_world) if local_world and 'TORCHELASTIC_RUN_ID' in os.environ else None


def resolve_devices(config: dict, accelerator: str) -> int | list[int]:
    """Lightning's ``devices`` for ``config``'s ``gpus`` / ``devices`` on ``accelerator`` ('cpu' or 'gpu').

    Raises:
        ConfigError: GPU ids on the CPU, ids or counts the machine does not have, ``--devices`` that disagrees
            with ``--gpus`` or with the launcher.
    """
    gpus = list(config.get('gpus') or DEFAULT_GPUS)
    count = config.get('devices')
    launched = launcher_processes()
    if accelerator == 'cpu':
        if gpus != DEFAULT_GPUS:
            raise ConfigError(f'--gpus {" ".join(map(str, gpus))} asks for CUDA devices but the run is on the CPU: '
                              f'use --devices N for N CPU processes, or --device cuda on a machine with GPUs.')
        devices = count or launched or 1
    else:
        available = torch.cuda.device_count()
        device = str(config.get('device') or '')
        if device.startswith('cuda:'):       # --device cuda:N names one GPU, as --gpus N does
            named = [int(device.split(':', 1)[1])]
            if gpus not in (DEFAULT_GPUS, named) or count not in (None, 1):
                raise ConfigError(f'--device {device} names one GPU but --gpus / --devices ask for others: give the '
                                  f'GPUs with --gpus (e.g. --gpus 0 1) and --device cuda.')
            gpus = named
        if count is not None and gpus != DEFAULT_GPUS and count != len(gpus):
            raise ConfigError(f'--devices {count} and --gpus {" ".join(map(str, gpus))} disagree: give one of them '
                              f'(--gpus names the CUDA ids, --devices takes the first N).')
        if count is not None:
            if count > available:
                raise ConfigError(f'--devices {count} asks for {count} GPUs; this machine has {available}.')
            devices = count
        else:
            missing = [gpu for gpu in gpus if not 0 <= gpu < available]
            if missing:
                raise ConfigError(f'--gpus {" ".join(map(str, gpus))}: no CUDA device {missing[0]} on this machine '
                                  f'(it has {available}: ids 0-{available - 1}).')
            devices = gpus
    processes = devices if isinstance(devices, int) else len(devices)
    nodes = int(config.get('num_nodes') or 1)
    if nodes > 1 and not any(name in os.environ for name in NODE_LAUNCH_VARIABLES):
        raise ConfigError(f'--num_nodes {nodes} needs a launcher on every node: torchrun, SLURM, or MASTER_ADDR, '
                          f'MASTER_PORT and NODE_RANK set on each; none is set here.')
    if launched is not None and processes != launched:
        raise ConfigError(f'The launcher started {launched} processes per node but the run asks for {processes} '
                          f'device(s): pass --devices {launched} (or as many --gpus ids), or launch '
                          f'--nproc_per_node {processes}.')
    return devices


def resolve_strategy(config: dict, devices: int | list[int]) -> str:
    """Lightning's strategy: the one asked for, else DDP (the method's variant) when several processes run.

    A method whose training leaves parameters without a gradient (S-HR-VQVAE: each stage freezes a sub-model)
    gets the DDP variant that allows it, also when plain ``--strategy ddp`` is asked for.

    Raises:
        ConfigError: ``--dist`` on a single process.
    """
    processes = (devices if isinstance(devices, int) else len(devices)) * int(config.get('num_nodes') or 1)
    spec = find_method(config['method'])
    strategy = config.get('strategy')
    if strategy in (None, 'auto'):
        if processes == 1:
            if config.get('dist'):
                raise ConfigError('--dist asks for a distributed run but only one process would run: pass '
                                  '--devices N (or several --gpus ids), --num_nodes, or launch with torchrun.')
            return 'auto'
        return spec.ddp_strategy if spec else 'ddp'
    needs_unused = spec is not None and spec.ddp_strategy.endswith(UNUSED_PARAMETERS_SUFFIX)
    if needs_unused and strategy in DDP_STRATEGIES:
        return strategy + UNUSED_PARAMETERS_SUFFIX
    if isinstance(strategy, str) and strategy not in StrategyRegistry.available_strategies():
        raise ConfigError(f'Unknown --strategy {strategy!r}: choose one of '
                          f'{sorted(StrategyRegistry.available_strategies())}.')
    return strategy
