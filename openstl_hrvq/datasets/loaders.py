"""DataLoader construction shared by every dataset: samplers for single-process and distributed runs, and the
validation split.

The validation split never holds a test sequence: with ``val_from='train'`` (the default) it is taken from the
training data, either as whole groups of training items chosen with the fixed :data:`VAL_SPLIT_SEED` and removed
from training (:func:`carve_validation`), or, for data generated on the fly, as a stream the test set never draws.
The seed is fixed, not the run's, so every run, seed and leaderboard row selects its checkpoint on the same
sequences. ``val_from='test'`` reproduces OpenSTL's arrangement (validation on the test set) for its exact protocol.
"""
from __future__ import annotations

import copy
import math
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from openstl_hrvq.distributed_utils import group_exists, group_rank, world_size
from openstl_hrvq.errors import ConfigError

#: Where the validation split comes from: the training data (default) or, as OpenSTL does, the test set.
VAL_SOURCES = ('train', 'test')
#: Seeds every validation split the loaders carve or generate (never the run's seed; see the module docstring).
VAL_SPLIT_SEED = 20240917
#: Default validation size: as many items as the test set, at most this many ...
MAX_DEFAULT_VAL_SIZE = 1000
#: ... and, when carved from a fixed training set, at most this fraction of it.
MAX_DEFAULT_VAL_FRACTION = 0.1
#: A fixed training set without natural groups is carved in this many contiguous blocks, so that a validation item
#: rarely shares frames with a training item (neighbouring windows of one recording overlap in time).
DEFAULT_VAL_BLOCKS = 100


def _world() -> tuple[int, int]:
    return world_size(), group_rank()


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


class ContiguousSplitSampler(DistributedSampler):
    """Rank r of W reads the items ``[r N / W, (r + 1) N / W)`` in order: every item exactly once, no padding, and
    the ranks' parts concatenated in rank order are the dataset in order (how the test is gathered,
    :mod:`openstl_hrvq.methods.gather`). Rank and world size are read when iterating, after the process group
    exists; a single process reads everything. It subclasses ``DistributedSampler`` so that Lightning keeps it.
    """

    def __init__(self, dataset: Dataset):
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False)

    def _part(self) -> range:
        world_size, rank = _world()
        return range(rank * len(self.dataset) // world_size, (rank + 1) * len(self.dataset) // world_size)

    def __iter__(self):
        return iter(self._part())

    def __len__(self) -> int:
        return len(self._part())


def in_order(loader) -> DataLoader:
    """``loader`` (or the DataLoader inside OpenSTL's PrefetchLoader) reading its dataset through a
    :class:`ContiguousSplitSampler`: the same dataset, batch size, collate function and workers."""
    base = getattr(loader, 'loader', loader)
    return DataLoader(base.dataset, batch_size=base.batch_size, sampler=ContiguousSplitSampler(base.dataset),
                      num_workers=base.num_workers, collate_fn=base.collate_fn, pin_memory=base.pin_memory,
                      drop_last=base.drop_last, worker_init_fn=base.worker_init_fn,
                      persistent_workers=base.persistent_workers)


class _ForwardsAttributes:
    """Answers for the wrapped ``self.dataset``'s attributes (``mean``, ``std``, ``data_name``), which the runner
    and the test code read from ``loader.dataset``."""

    def __getattr__(self, name):
        if name == 'dataset' or name.startswith('__'):   # not set yet while unpickling in a worker
            raise AttributeError(name)
        return getattr(self.dataset, name)


class AttributeSubset(_ForwardsAttributes, Subset):
    """A ``Subset`` that still answers for its dataset's attributes."""


def check_val_from(val_from: str) -> None:
    if val_from not in VAL_SOURCES:
        raise ConfigError(f"val_from={val_from!r} is not a validation source: use 'train' (held-out training "
                          f"data, the default) or 'test' (OpenSTL's arrangement: validation on the test set).")


def default_val_size(num_test: int, num_train: int | None = None) -> int:
    """Validation items when ``val_size`` is not given: as many as the test set, at most
    :data:`MAX_DEFAULT_VAL_SIZE`, and at most :data:`MAX_DEFAULT_VAL_FRACTION` of a fixed training set."""
    size = min(num_test, MAX_DEFAULT_VAL_SIZE)
    if num_train is not None:
        size = min(size, int(num_train * MAX_DEFAULT_VAL_FRACTION))
    return max(1, size)


def without_augmentation(dataset: Dataset) -> Dataset:
    """``dataset``, or a shallow copy of it with ``use_augment`` off: validation items are never augmented."""
    if not getattr(dataset, 'use_augment', False):
        return dataset
    plain = copy.copy(dataset)
    plain.use_augment = False
    return plain


def validation_mask(groups: np.ndarray, size: int, seed: int = VAL_SPLIT_SEED) -> np.ndarray:
    """Boolean ``(N,)`` mask of the items of whole ``groups`` (one id per item), drawn in an order seeded by
    ``seed`` until at least ``size`` items are chosen (whole groups: possibly more than ``size``).

    Raises:
        ConfigError: ``size`` leaves no training item.
    """
    groups = np.asarray(groups)
    if size >= len(groups):
        raise ConfigError(f'val_size={size} leaves no training data ({len(groups)} training items): use a smaller '
                          f'val_size, or val_from=\'test\' for OpenSTL\'s arrangement.')
    chosen = np.zeros(len(groups), dtype=bool)
    for group in np.random.default_rng(seed).permutation(np.unique(groups)):
        chosen |= groups == group
        if chosen.sum() >= size:
            break
    if chosen.all():
        raise ConfigError(f'val_size={size} takes every group of the {len(groups)} training items, leaving no training '
                          f'data: use a smaller val_size, or val_from=\'test\' for OpenSTL\'s arrangement.')
    return chosen


def carve_validation(dataset: Dataset, size: int, groups: np.ndarray | None = None,
                     seed: int = VAL_SPLIT_SEED) -> tuple[Dataset, Dataset]:
    """Split a fixed training set into ``(train, val)`` subsets that share no item (nor any group of items).

    Args:
        groups: a group id per item (e.g. the video of a KTH window): a group goes wholly to one side, or, if it
            straddles the requested size, its leftover items to neither. Default: :data:`DEFAULT_VAL_BLOCKS`
            contiguous blocks of items.

    Returns:
        ``(train, val)`` :class:`AttributeSubset` views; ``val`` reads ``dataset`` without augmentation.
    """
    if groups is None:
        groups = np.arange(len(dataset)) * DEFAULT_VAL_BLOCKS // max(1, len(dataset))
    chosen = validation_mask(groups, size, seed)
    val_items = np.flatnonzero(chosen)[:size]
    train_items = np.flatnonzero(~chosen)
    return (AttributeSubset(dataset, train_items.tolist()),
            AttributeSubset(without_augmentation(dataset), val_items.tolist()))


class SeededDraws(_ForwardsAttributes, Dataset):
    """``size`` fixed items of a dataset that draws every item afresh from the global generators (Python's
    ``random``, numpy's and torch's on the CPU), as OpenSTL's Moving MNIST training set does.

    Item ``i`` is drawn with those generators seeded from ``(seed, i)``, then their previous states are restored,
    so the items are the same in every epoch, worker and process, and the training stream is not disturbed.
    """

    def __init__(self, dataset: Dataset, size: int, seed: int = VAL_SPLIT_SEED):
        self.dataset, self.size, self.seed = dataset, size, seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if not 0 <= index < self.size:
            raise IndexError(f'item {index} out of range for {self.size} validation items')
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        seed = int(np.random.SeedSequence((self.seed, index)).generate_state(1)[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)    # the CPU's only: CUDA's generators are not restored below
        try:
            return self.dataset[index % len(self.dataset)]
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def build_loaders(train_set: Dataset, test_set: Dataset, batch_size: int, val_batch_size: int,
                  num_workers: int = 0, distributed: bool = False, drop_last: bool = False,
                  train_sampler: torch.utils.data.Sampler | None = None, val_set: Dataset | None = None):
    """``(train, val, test)`` DataLoaders; val reads ``val_set``, or the test set when it is None (OpenSTL's
    arrangement, ``val_from='test'``).

    Training drops its last incomplete batch and is shuffled (or uses ``train_sampler``). With
    ``distributed`` each rank sees its share through a ``DistributedSampler`` once the process group
    exists; loaders built before it (Lightning creates it later) keep plain samplers, which
    Lightning then replaces with distributed ones itself.
    """
    common = dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                  persistent_workers=num_workers > 0)
    distributed = distributed and group_exists()
    if train_sampler is None and distributed:
        train_sampler = DistributedSampler(train_set, shuffle=True)
    train = DataLoader(train_set, batch_size=batch_size, shuffle=train_sampler is None, sampler=train_sampler,
                       drop_last=True, **common)

    def evaluation_loader(dataset):
        sampler = DistributedSampler(dataset, shuffle=False) if distributed else None
        return DataLoader(dataset, batch_size=val_batch_size, shuffle=False, sampler=sampler, drop_last=drop_last,
                          **common)

    test = evaluation_loader(test_set)
    return train, (test if val_set is None else evaluation_loader(val_set)), test
