"""The training keys of S-HR-VQVAE: what the method reads from the flat config beyond its model's arguments.

The fields of :class:`TrainingConfig` are config keys: the method's registration derives its accepted keys
from them, from :class:`~openstl_hrvq.models.SHRVQVAE_Model`'s constructor and from
:class:`~openstl_hrvq.methods.stage_schedule.StageSchedule`'s fields, so the unknown-key check cannot fall
behind the code. A new key the method reads is a new field here; a new model key is a new constructor
argument of the model; neither needs another edit.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation and stage keys read by :class:`~openstl_hrvq.methods.SHRVQVAE` (defaults: in the method).

    Attributes:
        lr: Adam's learning rate of every stage without its own ``<stage>_lr``.
        vq_lr, prior_lr, joint_lr: a stage's own learning rate, or None for ``lr``.
        sched: each stage's learning-rate schedule: 'constant', 'cosine' or 'onecycle'.
        min_lr: the cosine schedule's final learning rate.
        weight_decay, opt_betas, opt_eps: Adam's.
        clip_grad: gradient-norm clipping, or None.
        joint_lambda: weight of the reconstruction term of eq. 9.
        vq_frames: random frames per clip the tokenizer trains on, or None for every frame.
        prior_loss_frames: 'future' (eq. 7 as in the paper) or 'all' frames after the first.
        prior_resample_prob, prior_resample_temperature, prior_resample_rounds: self-resampled histories.
        prior_layer_weights: weight of each layer's cross-entropy, or None for equal weights.
    """

    lr: float
    vq_lr: float | None
    prior_lr: float | None
    joint_lr: float | None
    sched: str
    min_lr: float
    weight_decay: float
    opt_betas: tuple[float, float] | None
    opt_eps: float | None
    clip_grad: float | None
    joint_lambda: float
    vq_frames: int | None
    prior_loss_frames: str
    prior_resample_prob: float
    prior_resample_temperature: float
    prior_resample_rounds: int
    prior_layer_weights: list[float] | None
