"""A quiet console: the plugin's log lines, one compact progress bar, the model table and the results.

Lightning, torch and fvcore print notices a user of this runner cannot act on: the hardware report, an
advertising tip, deprecations inside Lightning and fvcore themselves, a worker-count hint summed over the train
and val loaders, fvcore's list of operators it does not count. Each is silenced here by its exact message or
logger, so that every other warning still shows.
"""
from __future__ import annotations

import logging
import sys
import warnings

from pytorch_lightning.callbacks import TQDMProgressBar
from tqdm import tqdm

#: Warnings raised inside dependencies, by message (regular expressions matched at the start).
IGNORED_WARNINGS = (
    r'`isinstance\(treespec, LeafSpec\)` is deprecated',            # Lightning's use of torch's pytree API
    r'This DataLoader will create \d+ worker processes in total',     # counts train + val loaders together
    r'`weights_only` was not set',                                    # Lightning loading our own checkpoints
    r'.*does not have many workers which may be a bottleneck',         # the CPU configs choose few on purpose
    r'`torch\.jit\.script` is deprecated',                            # fvcore scripts a loss when imported
    r"You're resuming from a checkpoint that ended before the epoch ended",  # the runner says what it means
)

#: Lightning's informational lines (hardware report, tips, "fit stopped", "seed set"): their loggers are
#: raised to WARNING, so their warnings and errors still reach the console.
CHATTY_LOGGERS = ('pytorch_lightning', 'lightning.pytorch', 'lightning_fabric', 'lightning.fabric')

#: fvcore reports every operator it has no FLOP formula for (the quantizer's argmin, gathers, ...).
FLOP_COUNTER_LOGGERS = ('fvcore.nn.jit_analysis',)


def ignore_dependency_warnings() -> None:
    """Install the filters of :data:`IGNORED_WARNINGS`; call it before importing fvcore. Idempotent."""
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings('ignore', message=pattern)


def quiet_console() -> None:
    """Silence the notices above; idempotent."""
    ignore_dependency_warnings()
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in FLOP_COUNTER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


class BarAwareHandler(logging.StreamHandler):
    """The console's log handler: it clears the progress bars, writes the line, then redraws them, so no log
    line is glued to the end of a bar."""

    def emit(self, record: logging.LogRecord) -> None:
        with tqdm.external_write_mode(file=self.stream):
            super().emit(record)


def _short(value: float) -> str:
    return f'{value:.4g}'


class CompactProgressBar(TQDMProgressBar):
    """Lightning's tqdm bars, narrow enough for an 80-column terminal, and out of the way of the results.

    The training bar shows ``Epoch e/last`` (counted from 0, as the log lines count) and the two numbers a user
    watches, the step's ``loss`` and the last ``val_loss`` (both as in ``metrics.csv``), instead of every logged
    value; the throughput is left out for room.

    The test bar is cleared before the method logs its results, so the results are the last thing printed, and
    an error ends every bar's line before it is reported.
    """

    BAR_FORMAT = '{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]'

    def get_metrics(self, trainer, pl_module) -> dict:
        logged = trainer.progress_bar_metrics
        shown = {}
        for name, key in (('loss', 'train_loss_step'), ('loss', 'train_loss'), ('val_loss', 'val_loss')):
            if key in logged and name not in shown:
                shown[name] = _short(float(logged[key]))
        return shown

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f'Epoch {trainer.current_epoch}/{trainer.max_epochs - 1}')

    def init_test_tqdm(self):
        bar = super().init_test_tqdm()
        bar.leave = False
        return bar

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        # Callbacks' epoch-end hooks run before the method's, which logs the results.
        self.test_progress_bar.close()
        sys.stdout.flush()

    def on_exception(self, trainer, pl_module, exception) -> None:
        # End the bars' lines, so that the one-line error starts on a line of its own.
        for bar in (self._train_progress_bar, self._val_progress_bar, self._test_progress_bar):
            if bar is not None:
                bar.close()
        sys.stdout.flush()
