"""Name -> loader registry and OpenSTL's ``load_data`` dispatcher.

A loader is called as ``loader(batch_size, val_batch_size, data_root, num_workers, **options)`` and
returns ``(train, val, test)`` DataLoaders of ``(inputs (B, T_in, C, H, W), targets (B, T_out, C, H, W))``
in [0, 1]; only the options its signature names are passed on, so a whole experiment config can be
handed to :func:`load_data`.
"""
from __future__ import annotations

import inspect
from typing import Callable

from openstl_hrvq.errors import ConfigError

from . import kth, moving_mnist, transformed_digits

DATASETS: dict[str, Callable] = {}
dataset_parameters: dict[str, dict] = {}


def register_dataset(name: str, loader_fn: Callable, parameters: dict) -> None:
    """Make ``load_data(name, ...)`` call ``loader_fn``; ``parameters`` are the protocol's defaults.

    ``parameters`` holds at least ``in_shape`` (T_in, C, H, W), ``pre_seq_length``, ``aft_seq_length``,
    ``total_length`` and ``metrics`` (OpenSTL's keys), plus any loader option such as ``data_name``.
    """
    missing = {'in_shape', 'pre_seq_length', 'aft_seq_length', 'metrics'} - set(parameters)
    if missing:
        raise ValueError(f'Dataset {name!r} parameters lack {sorted(missing)}.')
    DATASETS[name] = loader_fn
    dataset_parameters[name] = dict(parameters)


def load_data(dataname: str, batch_size: int, val_batch_size: int, num_workers: int, data_root,
              dist: bool = False, **kwargs):
    """OpenSTL's ``openstl.datasets.load_data`` for the registered datasets.

    ``dist`` (or ``distributed=True``) gives each rank its share; other keyword arguments are
    forwarded when the dataset's loader accepts them (``pre_seq_length``, ``in_shape``,
    ``use_augment``, ``train_size``, ``test_size``, ...) and ignored otherwise, except ``val_from='train'``,
    which a loader must honour (see :mod:`~openstl_hrvq.datasets.loaders`).
    """
    if dataname not in DATASETS:
        raise ConfigError(f'Unknown dataset {dataname!r}; registered: {sorted(DATASETS)}.')
    loader_fn = DATASETS[dataname]
    options = {**dataset_parameters[dataname], **kwargs}
    options['distributed'] = bool(dist or kwargs.get('distributed', False))
    accepted = inspect.signature(loader_fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        if options.get('val_from', 'test') != 'test' and 'val_from' not in accepted:
            raise ConfigError(f"Dataset {dataname!r}'s loader takes no val_from, so it cannot hold validation data "
                              f"out of training: give it val_from/val_size arguments, or set val_from='test'.")
        options = {key: value for key, value in options.items() if key in accepted}
    return loader_fn(batch_size, val_batch_size, data_root, num_workers, **options)


def _moving_digits(data_name: str) -> dict:
    return {'in_shape': [10, 1, 64, 64], 'pre_seq_length': 10, 'aft_seq_length': 10, 'total_length': 20,
            'data_name': data_name, 'metrics': ['mse', 'mae', 'ssim', 'psnr']}


def _kth(aft_seq_length: int) -> dict:
    return {'in_shape': [10, 1, 128, 128], 'pre_seq_length': 10, 'aft_seq_length': aft_seq_length,
            'total_length': 10 + aft_seq_length, 'metrics': ['mse', 'mae', 'ssim', 'psnr', 'lpips']}


register_dataset('mmnist', moving_mnist.load_data, _moving_digits('mnist'))
register_dataset('mfmnist', moving_mnist.load_data, _moving_digits('fmnist'))
for _name, _aft in (('kth', 20), ('kth20', 20), ('kth40', 40)):
    register_dataset(_name, kth.load_data, _kth(_aft))
for _name, _train_set in transformed_digits.DATASET_NAMES.items():
    register_dataset(_name, transformed_digits.load_data, transformed_digits.dataset_entry(_train_set))
