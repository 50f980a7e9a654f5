"""DataLoader construction shared by every dataset: samplers for single-process and distributed runs."""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class EpochStreamSampler(DistributedSampler):
    """Fresh sequence ids every epoch for datasets that generate item ``i`` from ``i`` alone.

    Epoch ``e`` yields ids ``e * total + rank + k * world_size``: disjoint across ranks and epochs,
    the same whatever the number of workers. The epoch is whatever ``set_epoch`` last set (Lightning
    calls it), and advances by itself after each pass otherwise. Rank and world size are read when
    iterating, after the process group exists. It subclasses ``DistributedSampler`` only so that
    Lightning leaves it in place instead of wrapping it in a second distributed split.
    """

    def __init__(self, dataset: Dataset, num_sequences: int):
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False)
        self.num_sequences = num_sequences

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        world_size, _ = _world()
        return math.ceil(self.num_sequences / world_size)

    def __iter__(self):
        world_size, rank = _world()
        per_rank = math.ceil(self.num_sequences / world_size)
        first = self.epoch * per_rank * world_size + rank
        self.epoch += 1
        return iter(range(first, first + per_rank * world_size, world_size))


def build_loaders(train_set: Dataset, test_set: Dataset, batch_size: int, val_batch_size: int,
                  num_workers: int = 0, distributed: bool = False, drop_last: bool = False,
                  train_sampler: torch.utils.data.Sampler | None = None):
    """``(train, val, test)`` DataLoaders in OpenSTL's arrangement: val is the test set, as OpenSTL uses it.

    Training drops its last incomplete batch and is shuffled (or uses ``train_sampler``). With
    ``distributed`` each rank sees its share through a ``DistributedSampler`` once the process group
    exists; loaders built before it (Lightning creates it later) keep plain samplers, which
    Lightning then replaces with distributed ones itself.
    """
    common = dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                  persistent_workers=num_workers > 0)
    distributed = distributed and dist.is_available() and dist.is_initialized()
    if train_sampler is None and distributed:
        train_sampler = DistributedSampler(train_set, shuffle=True)
    train = DataLoader(train_set, batch_size=batch_size, shuffle=train_sampler is None, sampler=train_sampler,
                       drop_last=True, **common)
    test_sampler = DistributedSampler(test_set, shuffle=False) if distributed else None
    test = DataLoader(test_set, batch_size=val_batch_size, shuffle=False, sampler=test_sampler,
                      drop_last=drop_last, **common)
    return train, test, test
