"""timm's learning-rate schedulers under Lightning 2, for OpenSTL's methods.

OpenSTL's ``get_optim_scheduler`` builds timm schedulers (``CosineLRScheduler`` for ``sched='cosine'``, and
others) that do not follow torch's ``LRScheduler`` API: they take the epoch (``step(epoch)``) or the number of
optimizer updates (``step_update(num_updates)``). Lightning 2 refuses such a scheduler unless the
LightningModule overrides ``lr_scheduler_step``, which :class:`TimmSchedulerStep` does, stepping it as timm's
own training loop does.
"""
from __future__ import annotations


def is_timm_scheduler(scheduler) -> bool:
    """Whether ``scheduler`` is one of timm's (timm comes with OpenSTL; without it there are none)."""
    try:
        from timm.scheduler.scheduler import Scheduler
    except ImportError:
        return False
    return isinstance(scheduler, Scheduler)


class TimmSchedulerStep:
    """``lr_scheduler_step`` for a LightningModule whose ``configure_optimizers`` may return timm schedulers.

    A timm scheduler on the ``'epoch'`` interval is stepped with the number of the epoch about to start (Lightning
    calls this at the end of epoch ``current_epoch``), one on the ``'step'`` interval with the number of optimizer
    updates done; torch schedulers are stepped as Lightning steps them.
    """

    def lr_scheduler_step(self, scheduler, metric=None):
        if not is_timm_scheduler(scheduler):
            return super().lr_scheduler_step(scheduler, metric)
        interval = next((config.interval for config in self.trainer.lr_scheduler_configs
                         if config.scheduler is scheduler), 'epoch')
        if interval == 'epoch':
            scheduler.step(epoch=self.current_epoch + 1, metric=metric)
        else:
            scheduler.step_update(num_updates=self.global_step, metric=metric)
