"""A quiet console: the plugin's log lines, one progress bar, the model table and the results.

Lightning, torch and fvcore print notices a user of this runner cannot act on: the hardware report, an
advertising tip, deprecations inside Lightning itself, a worker-count hint summed over the train and val
loaders, fvcore's list of operators it does not count. Each is silenced here by its exact message or logger,
so that every other warning still shows.
"""
from __future__ import annotations

import logging
import warnings

#: Warnings raised inside dependencies, by message (regular expressions matched at the start).
IGNORED_WARNINGS = (
    r'`isinstance\(treespec, LeafSpec\)` is deprecated',            # Lightning's use of torch's pytree API
    r'This DataLoader will create \d+ worker processes in total',     # counts train + val loaders together
    r'`weights_only` was not set',                                    # Lightning loading our own checkpoints
    r'.*does not have many workers which may be a bottleneck',         # the CPU configs choose few on purpose
)

#: Lightning's informational lines (hardware report, tips, "fit stopped", "seed set"): their loggers are
#: raised to WARNING, so their warnings and errors still reach the console.
CHATTY_LOGGERS = ('pytorch_lightning', 'lightning.pytorch', 'lightning_fabric', 'lightning.fabric')

#: fvcore reports every operator it has no FLOP formula for (the quantizer's argmin, gathers, ...).
FLOP_COUNTER_LOGGERS = ('fvcore.nn.jit_analysis',)


def quiet_console() -> None:
    """Silence the notices above; idempotent."""
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings('ignore', message=pattern)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in FLOP_COUNTER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
