"""Which dataloaders an experiment uses: OpenSTL's when it can serve the dataset, the plugin's otherwise.

OpenSTL's loaders are used when OpenSTL is importable, knows the dataset and its data files are on disk; that
keeps a comparison on OpenSTL's own data pipeline. Otherwise the plugin's loaders (same interface, same
``(train, val, test)`` tuple, and embedded real digits when no files exist) serve it. One log line says which.

On OpenSTL's route the runner adds what OpenSTL's loaders lack: the data files are checked first (OpenSTL reads
them unchecked, so a float test file loads near-black and a damaged one fails with a bare numpy or gzip error),
``train_size`` / ``test_size`` / ``num_workers=0`` are honoured (:func:`_adapt_openstl_loader`), and the validation
split is held out of the training data (:func:`openstl_validation_split`): OpenSTL validates on its test set.
"""
from __future__ import annotations

import glob
import logging
import os.path as osp
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, RandomSampler

from openstl_hrvq import openstl_bridge
from openstl_hrvq.datasets import dataset_parameters as plugin_parameters
from openstl_hrvq.datasets import kth, moving_mnist
from openstl_hrvq.datasets import load_data as plugin_load_data
from openstl_hrvq.errors import MissingFileError
from openstl_hrvq.datasets.loaders import (AttributeSubset, SeededDraws, carve_validation, check_val_from,
                                           default_val_size, without_augmentation)

log = logging.getLogger(__name__)

#: Files OpenSTL's loaders read, per dataset, relative to ``data_root``.
OPENSTL_DATA_FILES = {
    'mmnist': ('moving_mnist/train-images-idx3-ubyte.gz', 'moving_mnist/mnist_test_seq.npy'),
    'mfmnist': ('moving_fmnist/train-images-idx3-ubyte.gz', 'moving_fmnist/fmnist_test_seq.npy'),
    'kth': ('kth',), 'kth20': ('kth',), 'kth40': ('kth',),
}

#: OpenSTL's layouts of the datasets only it serves: alternatives, each a set of paths (globs) under ``data_root``,
#: and OpenSTL's script that downloads them (``tools/prepare_data/`` of its repository).
OPENSTL_ONLY_LAYOUTS = {
    'taxibj': ((('taxibj/dataset.npz',),), 'download_taxibj.sh'),
    'kitticaltech': ((('kitticaltech_npy/train_data.npy', 'kitticaltech_npy/train_idx.npy',
                       'kitticaltech_npy/test_data.npy', 'kitticaltech_npy/test_idx.npy'),
                      ('kitti_hkl/X_train.hkl', 'kitti_hkl/sources_train.hkl', 'caltech')), 'download_kitticaltech.sh'),
    'human': ((('human/train.txt', 'human/test.txt'),), 'download_human3.6m.sh'),
    'mmnist_cifar': ((('moving_mnist/train-images-idx3-ubyte.gz', 'moving_mnist/mnist_cifar_test_seq.npy',
                       'cifar10'),), 'download_mmnist.sh (CIFAR-10 under cifar10/ in torchvision\'s layout)'),
    'noisymmnist': ((('moving_mnist/train-images-idx3-ubyte.gz', 'moving_mnist/mnist_test_seq.npy'),),
                    'download_mmnist.sh'),
    'bair': ((('softmotion30_44k/train', 'softmotion30_44k/test'),), 'download_bair.sh'),
    **{name: ((tuple(f'{name}/annotations/{split}.csv' for split in ('train', 'val', 'test')),), 'download_kinetics.sh')
       for name in ('kinetics400', 'kinetics600')},
}

LOADER_KEYS = ('pre_seq_length', 'aft_seq_length', 'in_shape', 'use_augment', 'use_prefetcher', 'drop_last',
               'data_name', 'val_from', 'val_size')


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


def openstl_reads_files(dataname: str, config: dict) -> bool:
    """Check the files OpenSTL's loader for ``dataname`` would read; False when they are sound but in a form
    only the plugin's loader reads (a test set with more frames than ``pre + aft``: OpenSTL reshapes each
    sequence to exactly that many).

    Raises:
        MissingFileError / DataFileError: the file, what is wrong with it and how to rebuild it.
    """
    data_root = config['data_root']
    if dataname not in plugin_parameters:
        check_openstl_layout(dataname, config)
        return True
    if dataname in ('kth', 'kth20', 'kth40'):
        kth.check_layout(Path(data_root) / 'kth')
        return True
    if dataname not in ('mmnist', 'mfmnist'):
        return True
    num_frames = config['pre_seq_length'] + config['aft_seq_length']
    data_name = config.get('data_name') or plugin_parameters[dataname]['data_name']
    source = moving_mnist.files_source(data_root, data_name, num_frames, config['in_shape'][-1])
    if source.test_sequences.shape[0] != num_frames:
        log.info("OpenSTL's loader reads test sequences of exactly %d frames; %s holds %d: openstl_hrvq's loader "
                 "serves these files instead", num_frames, source.description, source.test_sequences.shape[0])
        return False
    return True


def _weather_layout(dataname: str, config: dict) -> tuple[tuple[tuple[str, ...], ...], str]:
    """WeatherBench's layout as OpenSTL's loader reads it: ``weather_<res>deg/`` (or ``weather/``) holding a folder
    of NetCDF files per variable, ``<variable>/<variable>*.nc``."""
    module = openstl_bridge.openstl_module('datasets.dataloader_weather')
    data_name = config.get('data_name') or 't2m'
    names = module.mv_data_map.get(data_name, ['u10', 'v10'] if data_name == 'uv10' else [data_name])
    variables = [module.data_map[name] for name in names]
    resolution = next((split for split in ('5_625', '2_8125', '1_40625') if split in dataname), '5_625')
    layouts = tuple(tuple(f'{folder}/{variable}/{variable}*.nc' for variable in variables)
                    for folder in (f'weather_{resolution}deg', 'weather'))
    return layouts, 'download_weatherbench.sh'


def check_openstl_layout(dataname: str, config: dict) -> None:
    """Raise one error naming the files OpenSTL's loader would read for ``dataname`` when none of its layouts is
    complete under ``data_root`` (OpenSTL itself fails on them with a bare assertion or numpy error)."""
    if dataname.startswith('weather'):
        layouts, script = _weather_layout(dataname, config)
    elif dataname in OPENSTL_ONLY_LAYOUTS or dataname == 'kinetics':
        layouts, script = OPENSTL_ONLY_LAYOUTS[config.get('data_name') if dataname == 'kinetics' else dataname]
    else:
        return
    root = config['data_root']
    if any(all(glob.glob(osp.join(root, pattern)) for pattern in layout) for layout in layouts):
        return
    expected = ' or '.join('{' + ', '.join(layout) + '}' for layout in layouts)
    raise MissingFileError(f"No '{dataname}' data under {root}: OpenSTL's loader reads {expected}; get them with "
                           f"OpenSTL's tools/prepare_data/{script}, or point --data_root at them.")


def _kept_items(dataname: str, length: int, cap: int | None):
    """The items a ``train_size`` / ``test_size`` cap keeps, chosen as the plugin's loader chooses them: evenly
    spread KTH windows (they are ordered by action and person, so the first ones are one person boxing), the
    first Moving-MNIST sequences."""
    if cap is None or cap >= length:
        return None
    if dataname.startswith('kth'):
        return np.linspace(0, length - 1, cap).round().astype(np.int64).tolist()
    return list(range(cap))


def _unwrap(loader):
    """OpenSTL's ``loader`` without its PrefetchLoader (Lightning moves the batches)."""
    return getattr(loader, 'loader', loader)


def _draws_at_random(dataset) -> bool:
    """Whether OpenSTL's ``dataset`` generates each item afresh at random (its Moving MNIST family's training set),
    so that a subset of its indices would not be a fixed set."""
    module = openstl_bridge.openstl_module('datasets.dataloader_moving_mnist')
    return module is not None and isinstance(dataset, module.MovingMNIST) and bool(dataset.is_train)


def openstl_validation_split(train_set, num_test: int, val_size: int | None):
    """``(train_set, val_set)`` for OpenSTL's training set ``train_set`` (its loaders validate on the test set).

    A fixed training set is carved (:func:`~openstl_hrvq.datasets.loaders.carve_validation`: contiguous blocks
    drawn with the fixed validation seed, removed from training); a generated one (Moving MNIST's) keeps training
    as it is and validates on items drawn with seeded generators (:class:`~openstl_hrvq.datasets.loaders.SeededDraws`)
    from the training digits, which the test file never shows.
    """
    if _draws_at_random(train_set):
        size = default_val_size(num_test) if val_size is None else val_size
        return train_set, SeededDraws(without_augmentation(train_set), size)
    size = default_val_size(num_test, len(train_set)) if val_size is None else val_size
    return carve_validation(train_set, size)


def _adapt_openstl_loader(loader, dataname: str, num_workers: int, cap: int | None, dataset=None):
    """OpenSTL's ``loader`` with ``num_workers``, its ``dataset`` (if given) and at most ``cap`` items: the same
    batch size, order, collate function and worker seeding. OpenSTL's own loaders cannot be built with
    ``num_workers=0`` (``persistent_workers``) and take no size caps."""
    base = _unwrap(loader)
    dataset = base.dataset if dataset is None else dataset
    kept = _kept_items(dataname, len(dataset), cap)
    dataset = dataset if kept is None else AttributeSubset(dataset, kept)
    return DataLoader(dataset, batch_size=base.batch_size, shuffle=isinstance(base.sampler, RandomSampler),
                      drop_last=base.drop_last, num_workers=num_workers, pin_memory=base.pin_memory,
                      collate_fn=base.collate_fn, worker_init_fn=base.worker_init_fn,
                      persistent_workers=num_workers > 0)


def _openstl_loaders(config: dict, common: dict, kwargs: dict):
    """``(train, val, test)``: OpenSTL's loaders for ``config['dataname']`` with the runner's additions (size caps,
    ``num_workers=0``, the validation split held out of training: OpenSTL validates on the test set)."""
    dataname, num_workers = config['dataname'], common['num_workers']
    val_from = config.get('val_from', 'train')
    check_val_from(val_from)
    # OpenSTL builds persistent workers, which torch refuses for 0 workers; the loaders are rebuilt below.
    train, _, test = openstl_bridge.openstl_datasets().load_data(
        dataname, **dict(common, num_workers=max(1, num_workers)), **kwargs)
    train_size, test_size = config.get('train_size'), config.get('test_size')
    test_set = _unwrap(test).dataset
    num_test = len(_kept_items(dataname, len(test_set), test_size) or test_set)
    train_set, val_set = _unwrap(train).dataset, None
    if val_from == 'train':
        train_set, val_set = openstl_validation_split(train_set, num_test, config.get('val_size'))
    if num_workers == 0 or train_size is not None or test_size is not None or val_set is not None:
        train = _adapt_openstl_loader(train, dataname, num_workers, train_size, train_set)
        test = _adapt_openstl_loader(test, dataname, num_workers, test_size)
    val = test if val_set is None else _adapt_openstl_loader(test, dataname, num_workers, None, val_set)
    log.info('Validation: %d sequences %s', len(val.dataset),
             "of the test set (OpenSTL's arrangement)" if val_set is None else 'held out of the training data')
    return train, val, test


def build_dataloaders(config: dict):
    """``(train, val, test, source)`` for ``config['dataname']``; ``source`` is 'openstl' or 'openstl_hrvq'."""
    dataname, data_root = config['dataname'], config['data_root']
    # The dataset's own parameters (e.g. tdigits' train_set) travel too, so a config can override them.
    keys = set(LOADER_KEYS) | set(all_dataset_parameters().get(dataname, {})) - {'metrics', 'total_length'}
    kwargs = {key: config[key] for key in sorted(keys) if config.get(key) is not None}
    num_workers = config['num_workers']
    # dist=False: the loaders are built before Lightning creates the process group, so a DistributedSampler built
    # here fails (OpenSTL's) or is not built (the plugin's); Lightning gives every rank its share itself.
    common = dict(batch_size=config['batch_size'], val_batch_size=config['val_batch_size'],
                  num_workers=num_workers, data_root=data_root, dist=False)
    if openstl_can_load(dataname, data_root) and openstl_reads_files(dataname, config):
        log.info("Data: OpenSTL's '%s' dataloaders on files under %s", dataname, data_root)
        openstl_kwargs = {key: value for key, value in kwargs.items() if key not in ('val_from', 'val_size')}
        train, val, test = _openstl_loaders(config, common, openstl_kwargs)
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
    _, _, loader, _ = build_dataloaders(dict(config, train_size=1, num_workers=0, val_from='test'))
    batches = list(loader)
    return (np.concatenate([x.numpy() for x, _ in batches]), np.concatenate([y.numpy() for _, y in batches]),
            loader.dataset)
