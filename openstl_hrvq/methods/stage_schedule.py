"""The stage schedule of S-HR-VQVAE training: which part of the model learns in which epoch.

Disjoint training runs stage ``vq`` (HR-VQVAE alone, eq. 4) and then stage ``prior``
(ST-PixelCNN on the frozen tokenizer's codes, eq. 7). Joint training (eq. 9) appends stage ``joint``,
in which the prior and the decoder learn together from the codes the prior predicts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from openstl_hrvq.errors import ConfigError

log = logging.getLogger(__name__)

STAGES = ('vq', 'prior', 'joint')


@dataclass(frozen=True)
class StageSchedule:
    """Epoch lengths of the three stages, in order; a stage of length 0 is skipped."""

    vq_epochs: int
    prior_epochs: int
    joint_epochs: int = 0

    def __post_init__(self):
        for name in STAGES:
            value = getattr(self, f'{name}_epochs')
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f'{name}_epochs must be a non-negative integer, got {value!r}.')
        if self.vq_epochs + self.prior_epochs == 0:
            raise ConfigError('The schedule trains nothing useful: give vq_epochs or prior_epochs a positive length.')

    @property
    def lengths(self) -> dict[str, int]:
        return {name: getattr(self, f'{name}_epochs') for name in STAGES}

    @property
    def total_epochs(self) -> int:
        return sum(self.lengths.values())

    @property
    def used_stages(self) -> list[str]:
        """The stages that train (length > 0), in order."""
        return [name for name, length in self.lengths.items() if length > 0]

    @property
    def final_stage(self) -> str:
        """The last stage that trains: the one whose model the config asks for."""
        return self.used_stages[-1]

    def stage_at(self, epoch: int) -> str:
        """The stage that trains during 0-based ``epoch`` (epochs past the end stay in the last stage)."""
        end = 0
        for name in self.used_stages:
            end += self.lengths[name]
            if epoch < end:
                return name
        return self.final_stage

    def first_epoch(self, stage: str) -> int:
        """The 0-based epoch at which ``stage`` starts."""
        start = 0
        for name, length in self.lengths.items():
            if name == stage:
                return start
            start += length
        raise ValueError(f'Unknown stage {stage!r}; stages are {STAGES}.')

    def scaled_to(self, total_epochs: int) -> 'StageSchedule':
        """The same proportions over ``total_epochs`` epochs, each used stage keeping at least one epoch.

        This is how a budget override (``--epoch``) reaches the stages, so that a short CPU run and the
        full GPU run follow the same schedule.
        """
        if total_epochs == self.total_epochs:
            return self
        used = self.used_stages
        if total_epochs < len(used):
            raise ConfigError(f'epoch={total_epochs} is too short for the stages {used}: '
                              f'give at least {len(used)} epochs.')
        scale = total_epochs / self.total_epochs
        lengths = {name: max(1, round(length * scale)) if length else 0
                   for name, length in self.lengths.items()}
        # Rounding may miss the total by an epoch or two: the longest stage absorbs the difference.
        longest = max(used, key=lambda name: lengths[name])
        lengths[longest] += total_epochs - sum(lengths.values())
        scaled = StageSchedule(**{f'{name}_epochs': length for name, length in lengths.items()})
        log.info('Stage schedule %s scaled to %d epochs: %s', self.lengths, total_epochs, scaled.lengths)
        return scaled

    @classmethod
    def from_config(cls, config: dict) -> 'StageSchedule':
        """Build from the flat config keys ``vq_epochs``, ``prior_epochs``, ``joint_epochs`` and ``epoch``."""
        schedule = cls(int(config.get('vq_epochs', 0) or 0), int(config.get('prior_epochs', 0) or 0),
                       int(config.get('joint_epochs', 0) or 0))
        total = config.get('epoch')
        return schedule.scaled_to(int(total)) if total else schedule
