"""The experiment's checkpoints: what is written when, and which one ``--resume`` continues from.

``checkpoints/`` holds at most three files:

* ``best.ckpt``  -- lowest ``val_loss`` among the epochs the method lets compete (:class:`BestCheckpoint`);
* ``last.ckpt``  -- the latest state: every ``ckpt_every_n_steps`` steps, at every epoch end and at the end of
  training, so a finished run resumes as finished instead of retraining its tail (:class:`LastCheckpoint`);
* ``interrupted.ckpt`` -- written when training dies (an error, SIGTERM, SIGINT), but only when it holds more
  progress than the run started from (:class:`InterruptCheckpoint`): a run that fails before its first step must
  not leave a step-0 file that a later ``--resume`` would take for the newest state.

Every file is written atomically (:class:`AtomicCheckpointIO`): a kill or a full disk during a write leaves the
previous file whole.

``--resume`` takes the file with the most progress (global step), not the newest one (:func:`resume_checkpoint`).
"""
from __future__ import annotations

import logging
import os
import os.path as osp

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint, ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from openstl_hrvq.errors import CheckpointError, DivergedError, MissingFileError, StorageError
from openstl_hrvq.files import USER_FIXABLE, atomic_write

log = logging.getLogger(__name__)

LAST, INTERRUPTED, BEST = 'last.ckpt', 'interrupted.ckpt', 'best.ckpt'


def _read(path: str, fix: str) -> dict:
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ''
        raise CheckpointError(f'Checkpoint {path} cannot be read ({type(error).__name__}: {reason}): {fix}.') from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: ``torch.save`` into a temporary file in the checkpoint's own
    folder, ``fsync``, then ``os.replace`` (:func:`openstl_hrvq.files.atomic_write`).

    Lightning's own writer serialises to memory and copies the bytes over the target, so a full disk or a kill
    mid-copy leaves a truncated ``last.ckpt`` where a good one was.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f'{type(self).__name__} takes no storage_options.')
        with atomic_write(os.fspath(path)) as handle:
            torch.save(checkpoint, handle)


def _check_structure(state, path: str, fix: str) -> dict:
    """``state`` if it is a Lightning checkpoint (a dict with a ``state_dict`` of tensors), else a one-line error."""
    if not isinstance(state, dict):
        raise CheckpointError(f'{path} holds a {type(state).__name__}, not a Lightning checkpoint (a dict with a '
                              f"'state_dict'): {fix}.")
    weights = state.get('state_dict')
    if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        found = ', '.join(sorted(map(str, state))[:6]) or 'nothing'
        raise CheckpointError(f"{path} is not a Lightning checkpoint: it has no 'state_dict' of tensors (its keys: "
                              f'{found}): {fix}.')
    return state


def load_checkpoint(path: str) -> dict:
    """The checkpoint at ``path``; a missing, unreadable or malformed file is an error that names it."""
    if not osp.isfile(path):
        raise MissingFileError(f'No checkpoint at {path}: train first, or pass an existing file with --ckpt_path.')
    fix = 'delete it or pass a checkpoint written by tools/train.py with --ckpt_path'
    return _check_structure(_read(path, 'it is damaged or not a checkpoint; ' + fix), path, fix)


def resume_checkpoint(ckpt_dir: str, given: str | None = None) -> tuple[str, int]:
    """``(path, global_step)`` of the checkpoint ``--resume`` continues from.

    ``given`` (``--ckpt_path``) wins; otherwise the one of ``interrupted.ckpt`` and ``last.ckpt`` that holds the
    most training steps. A damaged candidate is an error naming it and the other checkpoint to use instead.
    """
    candidates = [given] if given else [osp.join(ckpt_dir, name) for name in (INTERRUPTED, LAST)]
    found = [path for path in candidates if osp.isfile(path)]
    if not found:
        raise MissingFileError(f'--resume found no checkpoint at {" or ".join(candidates)}: start without '
                               f'--resume, or pass the checkpoint with --ckpt_path.')
    steps = {}
    for path in found:
        others = [other for other in (*found, osp.join(ckpt_dir, BEST)) if other != path and osp.isfile(other)]
        fix = (f'resume from {others[0]} with --resume --ckpt_path {others[0]}, or delete {path}' if others
               else 'start over with --force')
        state = _check_structure(_read(path, fix), path, fix)
        if not {'global_step', 'loops', 'optimizer_states'} <= set(state):
            raise CheckpointError(f'{path} holds weights but no training state (global_step, loops, optimizer_states), '
                                  f'so training cannot continue from it: {fix}.')
        steps[path] = int(state['global_step'])
    path = max(steps, key=steps.get)
    return path, steps[path]


def trained_config(path: str) -> dict:
    """The config a checkpoint was trained with (its ``hyper_parameters``), or ``{}`` when it has none."""
    return dict(load_checkpoint(path).get('hyper_parameters') or {})


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (lowest monitored metric), over the epochs whose model may compete.

    A method trained in stages says which epochs hold the model its config asks for with a
    ``checkpoint_candidate`` attribute (S-HR-VQVAE: the final stage's epochs); the other epochs are skipped, so a
    config's ``best.ckpt`` is never a model from before its last stage. Methods without the attribute (OpenSTL's
    baselines) compete in every epoch, as in OpenSTL.
    """

    @staticmethod
    def _competes(pl_module: pl.LightningModule) -> bool:
        return bool(getattr(pl_module, 'checkpoint_candidate', True))

    def on_train_epoch_end(self, trainer, pl_module):
        if self._competes(pl_module):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module):
        if self._competes(pl_module):
            super().on_validation_end(trainer, pl_module)


class LastCheckpoint(Checkpoint):
    """Keeps ``last.ckpt`` current: every ``every_n_steps`` steps (0: never mid-epoch), at each epoch end and
    when training ends, so that no finished step is lost and a finished run is never retrained."""

    def __init__(self, ckpt_dir: str, every_n_steps: int = 0):
        super().__init__()
        self.path = osp.join(ckpt_dir, LAST)
        self.every_n_steps = every_n_steps

    def save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        self.save(trainer)

    def on_train_end(self, trainer, pl_module):
        self.save(trainer)


class InterruptCheckpoint(Checkpoint):
    """Writes ``interrupted.ckpt`` when training dies (an error, SIGTERM, SIGINT) after progress beyond
    ``start_step``.

    ``start_step`` is the global step the run started from (the resumed checkpoint's, or 0): an exception
    before any new step (a bad hyperparameter, a damaged checkpoint) leaves nothing, so it cannot shadow the
    checkpoints that hold the real progress. After a clean ``fit`` the file is removed: ``last.ckpt`` then holds
    more.

    The first error is the one the user sees: a failure to write this file (a full disk) is logged and never
    replaces it, and after a storage error nothing is attempted. Only global rank 0 writes, without a barrier, so
    an exception raised on one rank of a multi-process run cannot hang the others here.
    """

    def __init__(self, ckpt_dir: str):
        super().__init__()
        self.path = osp.join(ckpt_dir, INTERRUPTED)
        self.start_step = 0

    def on_exception(self, trainer, pl_module, exception):
        # A diverged state is non-finite: last.ckpt keeps the last finite one. A full disk cannot take it.
        if (trainer.state.fn != 'fit' or trainer.global_step <= self.start_step
                or isinstance(exception, (DivergedError, StorageError))
                or (isinstance(exception, OSError) and exception.errno in USER_FIXABLE)):
            return
        try:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            trainer.strategy.save_checkpoint(checkpoint, self.path)
        except Exception as error:  # noqa: BLE001 -- whatever fails here, the original exception must surface
            log.warning('Could not write %s (%s: %s); the other checkpoints are intact.', self.path,
                        type(error).__name__, error)
            return
        if trainer.is_global_zero:
            log.info('Training stopped at global step %d; %s holds that state (continue with --resume).',
                     trainer.global_step, self.path)

    def teardown(self, trainer, pl_module, stage):
        # Lightning calls teardown only after a stage ended without an exception.
        if stage == 'fit' and trainer.is_global_zero and osp.isfile(self.path):
            os.remove(self.path)
