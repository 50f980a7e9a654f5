"""The training keys of S-HR-VQVAE: what the method reads from the flat config beyond its model's arguments.

The fields of :class:`TrainingConfig` are config keys: the method's registration derives its accepted keys
from them, from :class:`~openstl_hrvq.models.SHRVQVAE_Model`'s constructor and from
:class:`~openstl_hrvq.methods.stage_schedule.StageSchedule`'s fields, so the unknown-key check cannot fall
behind the code. The method reads these keys only through this class: a new key is a new field here (with its
default and check), a new model key a new constructor argument of the model; neither needs another edit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping

from openstl_hrvq.methods.shrvqvae_keys import check_keys

__all__ = ['TrainingConfig']


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation and stage keys read by :class:`~openstl_hrvq.methods.SHRVQVAE`, with their defaults.

    Their accepted values and meanings are in :data:`openstl_hrvq.methods.shrvqvae_keys.TABLE`, which
    ``__post_init__`` checks them against (the same table the runner checks a whole config with).

    Attributes:
        opt: each stage's optimizer: 'adam' (paper), 'adamw' or 'sgd'.
        lr: the learning rate of every stage without its own ``<stage>_lr`` (paper: 3e-4).
        vq_lr, prior_lr, joint_lr: a stage's own learning rate, or None for ``lr``.
        sched: each stage's learning-rate schedule: 'constant' (or 'none', OpenSTL's spelling), 'cosine' or
            'onecycle'.
        vq_sched, prior_sched, joint_sched: a stage's own schedule, or None for ``sched``.
        min_lr: the cosine schedule's final learning rate.
        warmup_epoch, warmup_lr: each stage's first ``warmup_epoch`` epochs rise linearly from ``warmup_lr``.
        final_div_factor: the onecycle schedule's.
        weight_decay, opt_betas, opt_eps: Adam's (AdamW's: decoupled weight decay); momentum: SGD's.
        filter_bias_and_bn: no weight decay on biases and normalisation weights (parameters with one dimension).
        clip_grad, clip_mode: gradient clipping at ``clip_grad`` by 'norm' or by 'value', or None.
        joint_lambda: weight of the reconstruction term of eq. 9 (paper: 0.11).
        vq_frames: random frames per clip the tokenizer trains on, or None for every frame.
        prior_loss_frames: 'future' (eq. 7 as in the paper) or 'all' frames after the first.
        prior_resample_prob, prior_resample_temperature, prior_resample_rounds: self-resampled histories;
        prior_resample_frames: which frames they may swap, 'all' after the first or 'future' only.
        prior_layer_weights: weight of each layer's cross-entropy, or None for equal weights.
        prior_ema_decay: decay of the moving average of the prior's weights that validation and checkpoints use
            (:mod:`~openstl_hrvq.methods.prior_average`), or 0 for none.
        train_decoder_with_prior: during stage prior the tokenizer's decoder keeps learning to reconstruct the
            frozen codes (the reconstruction term of eq. 4 on ``vq_frames`` frames per clip, with stage vq's
            optimizer); the encoder and codebooks, hence the codes the prior learns, stay as stage vq left them.
    """

    opt: str = 'adam'
    lr: float = 3e-4
    vq_lr: float | None = None
    prior_lr: float | None = None
    joint_lr: float | None = None
    sched: str = 'constant'
    vq_sched: str | None = None
    prior_sched: str | None = None
    joint_sched: str | None = None
    min_lr: float = 0.0
    warmup_epoch: int = 0
    warmup_lr: float = 1e-5
    final_div_factor: float = 1e4
    weight_decay: float = 0.0
    filter_bias_and_bn: bool = False
    opt_betas: tuple[float, float] = (0.9, 0.999)
    opt_eps: float = 1e-8
    momentum: float = 0.9
    clip_grad: float | None = None
    clip_mode: str = 'norm'
    joint_lambda: float = 0.11
    vq_frames: int | None = None
    prior_loss_frames: str = 'future'
    prior_resample_prob: float = 0.0
    prior_resample_temperature: float = 1.0
    prior_resample_rounds: int = 1
    prior_resample_frames: str = 'all'
    prior_layer_weights: tuple[float, ...] | None = None
    prior_ema_decay: float = 0.0
    train_decoder_with_prior: bool = False

    @classmethod
    def from_config(cls, config: Mapping) -> 'TrainingConfig':
        """The fields' values in the flat ``config``; a key that is absent or None takes the field's default.

        The runner fills unset OpenSTL keys with None, so None means "not chosen" here, as it does there.
        """
        chosen = {field.name: config[field.name] for field in fields(cls) if config.get(field.name) is not None}
        for key in ('opt_betas', 'prior_layer_weights'):
            if key in chosen:
                chosen[key] = tuple(chosen[key])
        return cls(**chosen)

    def __post_init__(self):
        check_keys(asdict(self))

    def stage_lr(self, stage: str) -> float:
        """The learning rate of ``stage`` ('vq', 'prior' or 'joint')."""
        return getattr(self, f'{stage}_lr') or self.lr

    def stage_sched(self, stage: str) -> str:
        """The learning-rate schedule of ``stage`` ('vq', 'prior' or 'joint')."""
        return getattr(self, f'{stage}_sched') or self.sched
