"""The training keys of S-HR-VQVAE: what the method reads from the flat config beyond its model's arguments.

The fields of :class:`TrainingConfig` are config keys: the method's registration derives its accepted keys
from them, from :class:`~openstl_hrvq.models.SHRVQVAE_Model`'s constructor and from
:class:`~openstl_hrvq.methods.stage_schedule.StageSchedule`'s fields, so the unknown-key check cannot fall
behind the code. The method reads these keys only through this class: a new key is a new field here (with its
default and check), a new model key a new constructor argument of the model; neither needs another edit.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from openstl_hrvq.errors import ConfigError

#: Which frames the prior's cross-entropy scores: the predicted ones (paper) or every frame after the first.
PRIOR_LOSS_FRAMES = ('future', 'all')
#: Each stage's learning-rate schedule over its own steps ('none' is OpenSTL's spelling of constant).
SCHEDULES = ('constant', 'none', 'cosine', 'onecycle')


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation and stage keys read by :class:`~openstl_hrvq.methods.SHRVQVAE`, with their defaults.

    Attributes:
        lr: Adam's learning rate of every stage without its own ``<stage>_lr`` (paper: 3e-4).
        vq_lr, prior_lr, joint_lr: a stage's own learning rate, or None for ``lr``.
        sched: each stage's learning-rate schedule: 'constant', 'cosine' or 'onecycle'.
        min_lr: the cosine schedule's final learning rate.
        weight_decay, opt_betas, opt_eps: Adam's.
        clip_grad: gradient-norm clipping, or None.
        joint_lambda: weight of the reconstruction term of eq. 9 (paper: 0.11).
        vq_frames: random frames per clip the tokenizer trains on, or None for every frame.
        prior_loss_frames: 'future' (eq. 7 as in the paper) or 'all' frames after the first.
        prior_resample_prob, prior_resample_temperature, prior_resample_rounds: self-resampled histories.
        prior_layer_weights: weight of each layer's cross-entropy, or None for equal weights.
    """

    lr: float = 3e-4
    vq_lr: float | None = None
    prior_lr: float | None = None
    joint_lr: float | None = None
    sched: str = 'constant'
    min_lr: float = 0.0
    weight_decay: float = 0.0
    opt_betas: tuple[float, float] = (0.9, 0.999)
    opt_eps: float = 1e-8
    clip_grad: float | None = None
    joint_lambda: float = 0.11
    vq_frames: int | None = None
    prior_loss_frames: str = 'future'
    prior_resample_prob: float = 0.0
    prior_resample_temperature: float = 1.0
    prior_resample_rounds: int = 1
    prior_layer_weights: tuple[float, ...] | None = None

    @classmethod
    def from_config(cls, config: Mapping) -> 'TrainingConfig':
        """The fields' values in the flat ``config``; a key that is absent or None takes the field's default.

        The runner fills unset OpenSTL keys with None, so None means "not chosen" here, as it does there.
        """
        chosen = {field.name: config[field.name] for field in fields(cls) if config.get(field.name) is not None}
        if 'sched' in chosen:
            chosen['sched'] = str(chosen['sched']).lower()
        for key in ('opt_betas', 'prior_layer_weights'):
            if key in chosen:
                chosen[key] = tuple(chosen[key])
        return cls(**chosen)

    def __post_init__(self):
        if self.sched not in SCHEDULES:
            raise ConfigError(f"Unknown sched {self.sched!r} for SHRVQVAE: use 'constant', 'cosine' or 'onecycle'.")
        if self.vq_frames is not None and (not isinstance(self.vq_frames, int) or self.vq_frames < 1):
            raise ConfigError(f'vq_frames must be a positive integer (frames per clip the tokenizer trains on) '
                              f'or None for every frame, got {self.vq_frames!r}.')
        if self.prior_loss_frames not in PRIOR_LOSS_FRAMES:
            raise ConfigError(f'prior_loss_frames must be one of {PRIOR_LOSS_FRAMES}, got {self.prior_loss_frames!r}.')
        if not 0.0 <= self.prior_resample_prob <= 1.0:
            raise ConfigError(f'prior_resample_prob must lie in [0, 1], got {self.prior_resample_prob}.')
        if not isinstance(self.prior_resample_rounds, int) or self.prior_resample_rounds < 1:
            raise ConfigError(f'prior_resample_rounds must be a positive integer, got {self.prior_resample_rounds!r}.')

    def stage_lr(self, stage: str) -> float:
        """The learning rate of ``stage`` ('vq', 'prior' or 'joint')."""
        return getattr(self, f'{stage}_lr') or self.lr
