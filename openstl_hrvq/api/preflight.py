"""Checks of a config against the machine and the data, before training starts: the things a value check alone
cannot see (a ``data_root`` that is a file, an experiment folder that cannot be written, frames of another shape
than ``in_shape``, a validation fraction smaller than one batch)."""
from __future__ import annotations

import os.path as osp

from openstl_hrvq.config_keys import fail
from openstl_hrvq.errors import ConfigError
from openstl_hrvq.files import ensure_writable_folder


def check_folders(config: dict, save_dir: str) -> None:
    """``data_root`` is a folder (or absent: the embedded digits serve), and ``save_dir`` can hold files."""
    data_root = config.get('data_root')
    if data_root and osp.exists(data_root) and not osp.isdir(data_root):
        raise ConfigError(f'--data_root {data_root} is a file, not a folder: pass the folder that holds the '
                          f'datasets (e.g. ./data, as tools/prepare_data.py writes it).')
    ensure_writable_folder(save_dir, 'The experiment folder (--res_dir/--ex_name)')


def check_data(config: dict, train_loader, val_loader) -> None:
    """The frames the data give match ``in_shape`` and the sequence lengths; ``limit_val_batches`` is at least
    one batch."""
    dataset = train_loader.dataset
    if len(dataset):
        inputs, targets = dataset[0][:2]
        T, C, H, W = config['in_shape']
        if tuple(inputs.shape[1:]) != (C, H, W):
            fail('in_shape', list(config['in_shape']), f"[T, {inputs.shape[1]}, {inputs.shape[2]}, {inputs.shape[3]}]:"
                 f" the frames of '{config['dataname']}' under {config['data_root']} are {tuple(inputs.shape[1:])} "
                 f'(C, H, W)')
        if (inputs.shape[0], targets.shape[0]) != (config['pre_seq_length'], config['aft_seq_length']):
            fail('pre_seq_length', config['pre_seq_length'],
                 f"what the data give: {inputs.shape[0]} input and {targets.shape[0]} predicted frames "
                 f"(pre_seq_length={config['pre_seq_length']}, aft_seq_length={config['aft_seq_length']} asked)")
    limit = config.get('limit_val_batches')
    if val_loader is not None and isinstance(limit, float) and limit < 1 and int(limit * len(val_loader)) < 1:
        fail('limit_val_batches', limit, f'at least one of the {len(val_loader)} validation batches: a fraction '
                                         f'>= {1 / len(val_loader):.3g} or an integer number of batches')
