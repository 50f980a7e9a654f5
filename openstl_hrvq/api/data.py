"""Which dataloaders an experiment uses: OpenSTL's when it can serve the dataset, the plugin's otherwise.

OpenSTL's loaders are used when OpenSTL is importable, knows the dataset and its data files are on disk; that
keeps a comparison on OpenSTL's own data pipeline. Otherwise the plugin's loaders (same interface, same
``(train, val, test)`` tuple, and embedded real digits when no files exist) serve it. One log line says which.
"""
from __future__ import annotations

import logging
import os.path as osp

import numpy as np

from openstl_hrvq import openstl_bridge
from openstl_hrvq.datasets import dataset_parameters as plugin_parameters
from openstl_hrvq.datasets import load_data as plugin_load_data

log = logging.getLogger(__name__)

#: Files OpenSTL's loaders read, per dataset, relative to ``data_root``.
OPENSTL_DATA_FILES = {
    'mmnist': ('moving_mnist/train-images-idx3-ubyte.gz', 'moving_mnist/mnist_test_seq.npy'),
    'mfmnist': ('moving_fmnist/train-images-idx3-ubyte.gz', 'moving_fmnist/fmnist_test_seq.npy'),
    'kth': ('kth',), 'kth20': ('kth',), 'kth40': ('kth',),
}

LOADER_KEYS = ('pre_seq_length', 'aft_seq_length', 'in_shape', 'use_augment', 'use_prefetcher', 'drop_last',
               'data_name')


def all_dataset_parameters() -> dict:
    """The plugin's datasets, plus OpenSTL's when it is importable (the plugin's entries win)."""
    params = {}
    openstl = openstl_bridge.openstl_datasets()
    if openstl is not None:
        params.update(openstl.dataset_parameters)
    params.update(plugin_parameters)
    return params


def openstl_can_load(dataname: str, data_root: str) -> bool:
    """True when OpenSTL is importable, knows ``dataname`` and finds its data files under ``data_root``."""
    openstl = openstl_bridge.openstl_datasets()
    if openstl is None or dataname not in openstl.dataset_parameters:
        return False
    if dataname in OPENSTL_DATA_FILES:
        return all(osp.exists(osp.join(data_root, name)) for name in OPENSTL_DATA_FILES[dataname])
    return dataname not in plugin_parameters


def build_dataloaders(config: dict):
    """``(train, val, test, source)`` for ``config['dataname']``; ``source`` is 'openstl' or 'openstl_hrvq'."""
    dataname, data_root = config['dataname'], config['data_root']
    # The dataset's own parameters (e.g. tdigits' train_set) travel too, so a config can override them.
    keys = set(LOADER_KEYS) | set(all_dataset_parameters().get(dataname, {})) - {'metrics', 'total_length'}
    kwargs = {key: config[key] for key in sorted(keys) if config.get(key) is not None}
    common = dict(batch_size=config['batch_size'], val_batch_size=config['val_batch_size'],
                  num_workers=config['num_workers'], data_root=data_root, dist=bool(config.get('dist')))
    if openstl_can_load(dataname, data_root):
        log.info("Data: OpenSTL's '%s' dataloaders on files under %s", dataname, data_root)
        train, val, test = openstl_bridge.openstl_datasets().load_data(dataname, **common, **kwargs)
        source = 'openstl'
    else:
        for key in ('train_size', 'test_size'):
            if config.get(key) is not None:
                kwargs[key] = config[key]
        log.info("Data: openstl_hrvq's '%s' dataloaders (data_root %s)", dataname, data_root)
        train, val, test = plugin_load_data(dataname, **common, **kwargs)
        source = 'openstl_hrvq'
    return train, (val if val is not None else test), test, source


def test_arrays(config: dict):
    """The test split that :func:`build_dataloaders` gives ``config``, as arrays.

    Returns:
        ``(inputs (N, T_in, C, H, W), targets (N, S, C, H, W), dataset)``; the dataset carries ``mean``/``std``.
        Only the test split is wanted, so the training set is cut to one sequence and no workers start.
    """
    _, _, loader, _ = build_dataloaders(dict(config, train_size=1, num_workers=0))
    batches = list(loader)
    return (np.concatenate([x.numpy() for x, _ in batches]), np.concatenate([y.numpy() for _, y in batches]),
            loader.dataset)
