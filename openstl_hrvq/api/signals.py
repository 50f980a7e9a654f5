"""SIGTERM and SIGINT: stop cleanly, keep the progress, and exit non-zero (143 and 130, as a shell reports them).

A cluster scheduler stops a job with SIGTERM; a user with Ctrl-C (SIGINT). Either way the run must end with a
non-zero status, so that a job script or a leaderboard does not take a stopped run for a finished one.
(Lightning's own SIGTERM handling ends in ``SystemExit()``, status 0.)

:func:`exit_on_signals` turns both signals into :class:`Interrupted`, raised at once, except while training:
there :class:`SignalGuard` holds the signal until the current batch has finished its optimizer step, so the
``interrupted.ckpt`` that :class:`~openstl_hrvq.api.checkpoints.InterruptCheckpoint` writes holds a consistent
state. A second signal does not wait. On several processes every rank learns of a signal that any rank received
at the same batch (one all-reduce of an integer per batch), so all ranks stop together and exit with the same
status, and only global rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from typing import Iterator

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """A run stopped by a signal. A ``BaseException``, like ``KeyboardInterrupt``, so that the ``except
    Exception`` clauses that turn an entry's failure into a table row let it through."""

    def __init__(self, signum: int, message: str | None = None):
        self.signum = int(signum)
        super().__init__(message or f'stopped by {signal.Signals(self.signum).name} (exit status {self.exit_code})')

    def resumable_from(self, ckpt_dir: str) -> 'Interrupted':
        """The same interruption, its message saying where training continues from."""
        return Interrupted(self.signum, f'{self.args[0]}; the progress is in {ckpt_dir}: continue with --resume')

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + self.signum


class _State:
    installed = False      # inside exit_on_signals, in the main thread
    deferring = False      # True while SignalGuard's trainer is training
    pending: int | None = None


def _handler(signum, frame) -> None:
    if _State.deferring and _State.pending is None:
        _State.pending = signum
        log.info('%s received: stopping after the current batch.', signal.Signals(signum).name)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted` (deferred while a :class:`SignalGuard`
    trains). The previous handlers come back afterwards. Outside the main thread signals cannot be handled,
    and nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _handler) for signum in HANDLED}
    _State.installed, _State.pending = True, None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _State.installed, _State.deferring, _State.pending = False, False, None


def as_interrupted(error: BaseException) -> Interrupted | None:
    """``error`` as an :class:`Interrupted` when a signal caused it (including Lightning's SIGTERMException and
    a KeyboardInterrupt raised by a handler other than ours), else None."""
    if isinstance(error, Interrupted):
        return error
    if isinstance(error, SIGTERMException):
        return Interrupted(signal.SIGTERM)
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(signal.SIGINT)
    return None


def exit_status(error: BaseException, hint: str = '') -> int:
    """For a command line's ``except BaseException``: a signal's exit status (143, 130), after one line on stderr
    (``hint`` appended); anything else is raised again."""
    interrupted = as_interrupted(error)
    if interrupted is None:
        raise error
    sys.stderr.write(f'error: {interrupted}{hint}\n')
    return interrupted.exit_code


class SignalGuard(pl.Callback):
    """Defers a signal received during training to the end of the current training or validation batch, and
    raises it on every rank there."""

    def on_train_start(self, trainer, pl_module):
        # Lightning wraps SIGTERM in its own handler just before training (it broadcasts from inside the handler,
        # which can interleave with the batch's collectives, and ends in an exit status of 0): ours replaces it
        # for the training; Lightning puts back the one it found (ours) when fit ends.
        if _State.installed and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _handler)
        _State.deferring = True

    def _check(self, trainer) -> None:
        signum = _State.pending or 0
        if trainer.world_size > 1:
            shared = trainer.strategy.reduce(torch.tensor(signum, device=trainer.strategy.root_device), reduce_op='max')
            signum = int(shared)
        if signum:
            _State.deferring, _State.pending = False, None
            raise Interrupted(signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._check(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.state.fn == 'fit' and not trainer.sanity_checking:
            self._check(trainer)

    def on_train_end(self, trainer, pl_module):
        self._check(trainer)      # a signal during the last batch's hooks
        _State.deferring = False

    def on_exception(self, trainer, pl_module, exception):
        _State.deferring = False
