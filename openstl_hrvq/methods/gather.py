"""Test outputs of a multi-process run brought to one process: every test sequence exactly once, in dataset order.

The runner's test loader gives rank r of W the contiguous items ``[r N / W, (r + 1) N / W)``
(:class:`~openstl_hrvq.datasets.loaders.ContiguousSplitSampler`), so the ranks' outputs concatenated in rank order
are the test set in order, without the duplicates a ``DistributedSampler`` pads the last ranks with. Rank 0 then
scores them once and shares the scores, so every rank returns the same numbers.
"""
from __future__ import annotations

import numpy as np
import torch.distributed as dist

from openstl_hrvq.distributed_utils import group_rank, world_size


def gather_in_rank_order(arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    """Every rank's ``arrays`` (name -> ``(N_r, ...)``; None for a rank without items) concatenated along the
    first axis in rank order, on rank 0; None on the other ranks. A single process gets ``arrays`` back."""
    world = world_size()
    if world == 1:
        return arrays
    parts = [None] * world if group_rank() == 0 else None
    dist.gather_object(arrays, parts, dst=0)
    if parts is None:
        return None
    parts = [part for part in parts if part is not None]
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}


def share_from_rank_zero(value):
    """``value`` as rank 0 has it, on every rank (the other ranks pass None); a single process keeps its own."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
