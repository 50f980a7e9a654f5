"""Stop a diverging run at the first non-finite loss or weight, before a checkpoint or a test can use it.

A NaN does not heal: every later step, the best checkpoint (NaN compares as "no result", so Lightning would
still save it) and the test predictions would be NaN, and the run would end as if it had succeeded.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from pytorch_lightning.callbacks import Callback

from openstl_hrvq.errors import DivergedError


def _fix(stage: str | None) -> str:
    lr_keys = f'lr or {stage}_lr' if stage else 'lr'
    return (f'lower the learning rate ({lr_keys}) or clip gradients (clip_grad, e.g. --clip_grad 1.0), then '
            f'--resume continues from the last finite checkpoint or --force starts over')


class DivergenceGuard(Callback):
    """Raises :class:`DivergedError` for a non-finite training loss or weight (after each step) or a non-finite
    ``monitor`` after validation. It runs before the checkpoint callbacks of the same hook (Lightning orders
    checkpoint callbacks last), so no checkpoint is written from the diverged state."""

    def __init__(self, monitor: str = 'val_loss'):
        super().__init__()
        self.monitor = monitor

    @staticmethod
    def _where(trainer, pl_module) -> tuple[str | None, str]:
        stage = getattr(pl_module, 'stage', None)
        name = f'stage "{stage}"' if stage else 'training'
        return stage, f'{name} at global step {trainer.global_step} (epoch {trainer.current_epoch})'

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get('loss') if isinstance(outputs, Mapping) else outputs
        stage, where = self._where(trainer, pl_module)
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss).all()):
            raise DivergedError(f'Training diverged: the loss is {loss.float().mean().item()} in {where}; '
                                f'{_fix(stage)}.')
        params = [p for p in pl_module.parameters() if p.requires_grad]
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise DivergedError(f'Training diverged: the weights became non-finite in {where}; {_fix(stage)}.')

    def on_validation_end(self, trainer, pl_module):
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or bool(torch.isfinite(value).all()):
            return
        stage, where = self._where(trainer, pl_module)
        raise DivergedError(f'Training diverged: {self.monitor} is {value.item()} after {where}; {_fix(stage)}.')
