"""An exponential moving average of the prior's weights (Polyak averaging), for ``prior_ema_decay > 0``.

At a constant learning rate the prior's weights wander around a minimum from step to step, and with them the
validation error of its rollouts. The average W_avg <- d W_avg + (1 - d) W, folded in after every optimizer
step of the prior, is a smoother estimate of that minimum; PyTorch's :class:`~torch.optim.swa_utils.AveragedModel`
keeps it.

Which weights are used where:

* training steps train the live prior, as without the average;
* validation, and so the choice of ``best.ckpt``, scores the average (swapped in for the validation epoch),
  and after training the fitted model holds it, as with Lightning's ``WeightAveraging``;
* a checkpoint file holds the average as ``model.prior`` in its ``state_dict``, so every reader of it --
  testing, ``tools/predict.py``, the leaderboard -- uses the average without knowing about it, and a
  checkpoint loads whether or not the reader's config averages. The live weights and the number of updates
  travel beside it under :data:`TRAINED_KEY`; ``--resume`` puts the live weights back to continue training
  (:meth:`PriorAverage.unpack`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = ['PriorAverage', 'TRAINED_KEY']

#: The checkpoint entry with the live prior's weights (``state_dict``, named as in the prior) and the number of
#: updates of the average (``updates``), present once the average has started.
TRAINED_KEY = 'prior_trained'


class PriorAverage:
    """The averaged copy of ``prior``'s parameters (its buffers are constants such as index offsets).

    Not a submodule of the method, so that ``state_dict`` keeps the keys of a run without it; it follows the
    prior's device at each update.

    Args:
        prior: the module to average (the live ST-PixelCNN).
        decay: d in W_avg <- d W_avg + (1 - d) W, in (0, 1); the first update copies W.
    """

    def __init__(self, prior: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f'The average of the prior needs a decay in (0, 1), got {decay}.')
        self.average = AveragedModel(prior, multi_avg_fn=get_ema_multi_avg_fn(float(decay)), use_buffers=False)
        self.average.requires_grad_(False)
        #: Whether the live prior holds the average's values right now (:meth:`swap`).
        self.swapped = False

    @property
    def updates(self) -> int:
        """Updates folded in so far (0: the average is only the copy made at construction)."""
        return int(self.average.n_averaged)

    @torch.no_grad()
    def update(self, prior: nn.Module) -> None:
        """Fold the live weights of ``prior`` into the average (after an optimizer step)."""
        device = next(prior.parameters()).device
        if next(self.average.parameters()).device != device:
            self.average.to(device)
        self.average.update_parameters(prior)

    @torch.no_grad()
    def swap(self, prior: nn.Module) -> None:
        """Exchange the values of the averaged and the live parameters of ``prior`` (twice restores both)."""
        for averaged, live in zip(self.average.module.parameters(), prior.parameters(), strict=True):
            kept = live.detach().clone()
            live.copy_(averaged.to(live.device))
            averaged.copy_(kept.to(averaged.device))
        self.swapped = not self.swapped

    def hold_average(self, prior: nn.Module) -> None:
        """Let ``prior`` hold the average (for validation, and after training), once there is one."""
        if self.updates and not self.swapped:
            self.swap(prior)

    def hold_trained(self, prior: nn.Module) -> None:
        """Let ``prior`` hold its trained weights again (after validation)."""
        if self.swapped:
            self.swap(prior)

    def pack(self, checkpoint: dict, prefix: str) -> None:
        """Write the average into ``checkpoint['state_dict']`` (the prior's keys start with ``prefix``) and the
        live weights under :data:`TRAINED_KEY`; nothing before the first update."""
        if not self.updates:
            return
        state = checkpoint['state_dict']
        averaged = {name: value.detach() for name, value in self.average.module.named_parameters()}
        live = {name: state[prefix + name] for name in averaged}
        if self.swapped:    # saved mid-validation: the prior holds the average, the average the live weights
            averaged, live = live, averaged
        checkpoint[TRAINED_KEY] = {'state_dict': live, 'updates': self.updates}
        state.update({prefix + name: value.to(state[prefix + name].device) for name, value in averaged.items()})

    @staticmethod
    def unpack(checkpoint: dict, prefix: str, average: 'PriorAverage | None', prior: nn.Module) -> None:
        """Undo :meth:`pack` before ``--resume`` loads ``checkpoint``: the live weights go back into its
        ``state_dict``, and ``average`` (None when the resumed config does not average) takes the average and its
        update count. A checkpoint without an average leaves ``average`` to start afresh."""
        trained = checkpoint.pop(TRAINED_KEY, None)
        if trained is None:
            return
        state = checkpoint['state_dict']
        if average is not None:
            averaged = {name: state[prefix + name] for name in trained['state_dict']}
            average.average.module.load_state_dict(averaged, strict=False)
            average.average.n_averaged.fill_(int(trained['updates']))
            average.average.to(next(prior.parameters()).device)
        state.update({prefix + name: value for name, value in trained['state_dict'].items()})
