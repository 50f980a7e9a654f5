"""``--resume`` against the run's record: what may change between the run that wrote a checkpoint and the run
that continues it.

The record is the config the checkpoint was trained with (its ``hyper_parameters``). Each key that differs is
judged by its entry in the key table (:mod:`openstl_hrvq.config_keys`): a key that shapes the weights, or the
kind of optimizer or schedule the checkpoint restores, is refused in one line naming it; a training key that the
method applies to the restored optimizer (lr, weight decay, ...) or reads afresh is logged and goes to the record;
the others (budget, paths, test) are free. An OpenSTL method applies nothing to its restored optimizer, so its
training keys are refused, and its own model keys (unknown here) count as shape keys.
"""
from __future__ import annotations

import logging

import pytorch_lightning as pl

from openstl_hrvq.api.validation import key_table
from openstl_hrvq.config_keys import APPLIED, RESTORED, SHAPE
from openstl_hrvq.errors import CheckpointError
from openstl_hrvq.method_registry import find_method

log = logging.getLogger(__name__)

#: Constructor arguments the runner passes beside the config; they describe the data, not the config.
NOT_CONFIG = frozenset({'steps_per_epoch', 'test_mean', 'test_std', 'save_dir'})


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def check_resume(config: dict, trained: dict, path: str) -> dict:
    """Compare ``config`` with ``trained`` (the record of the checkpoint at ``path``).

    Returns:
        ``{key: (old, new)}`` of the training keys that change and are applied.

    Raises:
        CheckpointError: a key that cannot change on ``--resume``, named with both values and the fix.
    """
    table = key_table(config['method'])
    registered = find_method(config['method']) is not None
    applied = {}
    for key in sorted(set(trained) & set(config) - NOT_CONFIG):
        old, new = _plain(trained[key]), _plain(config[key])
        if old == new or (key == 'method' and str(old).lower() == str(new).lower()):
            continue
        kind = table[key].resume if key in table else SHAPE
        if kind == APPLIED and not registered:
            kind = RESTORED
        if kind == SHAPE:
            raise CheckpointError(f'--resume: {key} was {old!r} when {path} was trained and is {new!r} now, which '
                                  f'changes the model\'s weights: keep {key}={old!r} to continue, or train the new '
                                  f'config from scratch (another --ex_name, or --force).')
        if kind == RESTORED:
            raise CheckpointError(f'--resume: {key} was {old!r} when {path} was trained and is {new!r} now, but the '
                                  f'checkpoint restores the optimizer and schedule of {key}={old!r}: keep it to '
                                  f'continue, or train from scratch (another --ex_name, or --force).')
        if kind == APPLIED:
            applied[key] = (old, new)
    if applied:
        log.info('--resume applies the changed training keys: %s',
                 ', '.join(f'{key} {old!r} -> {new!r}' for key, (old, new) in applied.items()))
    return applied


def weights_mismatch(module, state_dict: dict) -> str | None:
    """Where ``state_dict`` does not fit ``module`` (missing, unexpected or differently shaped tensors), or None."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(key for key in set(own) & set(state_dict) if tuple(own[key].shape) != tuple(state_dict[key].shape))
    parts = [f'{name} {", ".join(keys[:2])}{"..." if len(keys) > 2 else ""}' for name, keys in
             (('missing', missing), ('unexpected', unexpected), ('other shapes', shapes)) if keys]
    return '; '.join(parts) or None


class WriteRecordAtStart(pl.Callback):
    """Writes the training record when training starts, after the checkpoint was restored and the config was
    checked: a run that fails before (a refused key, a damaged file) never rewrites the record."""

    def __init__(self, write):
        super().__init__()
        self.write = write

    def on_train_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            self.write()
