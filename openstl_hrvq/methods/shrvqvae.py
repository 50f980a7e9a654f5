"""``SHRVQVAE``: the OpenSTL method (a LightningModule) that trains and tests S-HR-VQVAE.

OpenSTL builds a method as ``cls(steps_per_epoch=..., test_mean=..., test_std=..., save_dir=..., **config)``
and drives it with a plain ``Trainer``; it does not take callbacks from plugins. So the training schedule
lives here, in LightningModule hooks, driven by the config keys ``vq_epochs``, ``prior_epochs`` and
``joint_epochs`` (see :class:`StageSchedule`):

* ``vq``    -- HR-VQVAE learns to tokenize every frame of the sequences (paper eq. 4);
* ``prior`` -- HR-VQVAE is frozen, ST-PixelCNN learns the code indices with teacher forcing (eq. 7);
* ``joint`` -- the prior and the decoder learn together: L_prior + lambda * ||x - D(e_C)||^2, where the
  decoder is fed the codes the prior predicted (eq. 9), so it learns to absorb the prior's mistakes.

Each stage has its own optimizer (Adam by default) and learning-rate schedule (manual optimization: Lightning steps one
optimizer per batch, and every one of them is checkpointed, so a resumed run continues each stage exactly).
``val_loss`` is always the MSE of really predicted frames, in the test's units, so the best checkpoint is the
best predictor of the final stage (:attr:`SHRVQVAE.checkpoint_candidate`).
"""
from __future__ import annotations

import logging
import math
import warnings

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
import torch
import torch.nn.functional as F

from openstl_hrvq.methods.evaluation import LeaderboardTestMixin
from openstl_hrvq.methods.prior_average import PriorAverage
from openstl_hrvq.methods.stage_schedule import STAGES, StageSchedule
from openstl_hrvq.methods.training_config import TrainingConfig
from openstl_hrvq.metrics import frame_sum_mse
from openstl_hrvq.models import SHRVQVAE_Model

log = logging.getLogger(__name__)

#: Where the prior's weights sit in the method's ``state_dict``.
PRIOR_PREFIX = 'model.prior.'


class SHRVQVAE(LeaderboardTestMixin, pl.LightningModule):
    """S-HR-VQVAE as an OpenSTL 1.0.0 method.

    Args:
        steps_per_epoch: optimizer steps in one epoch (length of the training loader).
        test_mean, test_std: statistics to de-normalise the test data with before scoring.
        save_dir: the experiment folder; test outputs go to ``save_dir/saved``.
        **config: the flat experiment config (OpenSTL's keys, the model's keys, the schedule's keys).
    """

    def __init__(self, steps_per_epoch: int = 1, test_mean=None, test_std=None, save_dir: str = '.', **config):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.model = SHRVQVAE_Model(**config)
        self.schedule = StageSchedule.from_config(config)
        self.training_config = TrainingConfig.from_config(config)
        decay = self.training_config.prior_ema_decay
        #: The moving average of the prior's weights that validation and checkpoints use (``prior_ema_decay``).
        self.prior_average = PriorAverage(self.model.prior, decay) if decay > 0 else None
        self.stage = None          # set by the first training batch, from the (possibly restored) epoch
        self._announced_stage = None
        self.test_outputs = []

    # ------------------------------------------------------------------ forward / prediction
    def forward(self, batch_x: torch.Tensor, batch_y: torch.Tensor | None = None) -> torch.Tensor:
        """Predict future frames: (B, T_in, C, H, W) -> (B, aft_seq_length, C, H, W) in [0, 1]."""
        return self.model(batch_x)

    # ------------------------------------------------------------------ stages
    def _set_stage(self, stage: str) -> None:
        """Freeze what the stage must not change and put frozen parts in eval mode.

        In eval mode the quantizer neither moves its EMA codebooks nor restarts dead codes, so the token
        vocabulary the prior learns stays fixed after stage ``vq``.
        """
        vqvae, prior = self.model.vqvae, self.model.prior
        prior_stage = [prior, vqvae.decoder] if self.training_config.train_decoder_with_prior else [prior]
        trainable = {'vq': [vqvae], 'prior': prior_stage, 'joint': [prior, vqvae.decoder]}[stage]
        for module in (vqvae, prior):
            module.requires_grad_(False)
            module.eval()
        for module in trainable:
            module.requires_grad_(True)
            module.train(self.training)
        self.stage = stage

    def train(self, mode: bool = True):
        # Lightning switches the whole module to train mode around validation; re-apply the freeze.
        super().train(mode)
        if mode and getattr(self, 'stage', None) is not None:
            self._set_stage(self.stage)
        return self

    def on_train_batch_start(self, batch, batch_idx):
        for frames in batch:    # inputs and targets: every frame is a reconstruction target
            self.model.vqvae.check_range(frames)
        # Checked per batch, not per epoch: a run resumed mid-epoch does not get on_train_epoch_start again.
        stage = self.schedule.stage_at(self.current_epoch)
        if stage != self._announced_stage:
            log.info('Epoch %d (global step %d): training stage "%s" (schedule %s)',
                     self.current_epoch, self.global_step, stage, self.schedule.lengths)
            self._announced_stage = stage
        if stage != self.stage:
            self._set_stage(stage)

    @property
    def checkpoint_candidate(self) -> bool:
        """Whether this epoch's model may become ``best.ckpt``: only the final stage's epochs compete.

        An earlier stage's model is not the one the config asks for: a joint config whose joint epochs validate
        a little worse than its last prior epoch (64 validation sequences are noisy) would otherwise test a
        disjoint model under the joint config's name, and a joint-vs-disjoint comparison would compare
        disjoint with disjoint. The runner's :class:`~openstl_hrvq.api.checkpoints.BestCheckpoint` reads this.
        """
        return self.schedule.stage_at(self.current_epoch) == self.schedule.final_stage

    # ------------------------------------------------------------------ optimisation
    def _stage_steps(self, stage: str) -> int:
        return max(1, self.schedule.lengths[stage] * int(self.hparams.steps_per_epoch))

    def _lr_factor(self, stage: str):
        """The stage's learning-rate factor per step of its own (its schedule: constant or cosine after an optional
        linear warm-up of ``warmup_epoch`` epochs from ``warmup_lr``), for a ``LambdaLR``."""
        config = self.training_config
        lr, steps = float(config.stage_lr(stage)), self._stage_steps(stage)
        warmup = min(steps - 1, config.warmup_epoch * int(self.hparams.steps_per_epoch))
        start, min_ratio = float(config.warmup_lr) / lr, float(config.min_lr) / lr
        cosine = config.stage_sched(stage) == 'cosine'

        def factor(step: int) -> float:
            if step < warmup:
                return start + (1 - start) * step / warmup
            if not cosine:
                return 1.0
            progress = min(step - warmup, steps - warmup) / (steps - warmup)
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return factor

    def _make_scheduler(self, optimizer, stage: str):
        """The stage's learning-rate schedule over its own steps (``<stage>_sched`` or ``sched``: constant, cosine
        or onecycle)."""
        if self.training_config.stage_sched(stage) == 'onecycle':
            return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=float(self.training_config.stage_lr(stage)),
                                                       total_steps=self._stage_steps(stage) + 1,
                                                       final_div_factor=float(self.training_config.final_div_factor))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor(stage))

    def _param_groups(self, params: list) -> list[dict]:
        """One group, or with ``filter_bias_and_bn`` a second one without weight decay for the biases and
        normalisation weights (the parameters with one dimension). ``decays`` says which group decays."""
        if not self.training_config.filter_bias_and_bn:
            return [{'params': params, 'decays': True}]
        return [{'params': [p for p in params if p.ndim > 1], 'decays': True},
                {'params': [p for p in params if p.ndim <= 1], 'decays': False}]

    def _optimizer_settings(self, stage: str) -> dict:
        """The optimizer's per-group settings from the config: lr, weight decay and adam's or sgd's own."""
        config = self.training_config
        settings = {'lr': float(config.stage_lr(stage)), 'weight_decay': float(config.weight_decay)}
        if config.opt == 'sgd':
            settings['momentum'] = float(config.momentum)
        else:
            settings.update(betas=tuple(config.opt_betas), eps=float(config.opt_eps))
        return settings

    def configure_optimizers(self):
        """One optimizer per stage (paper: Adam, lr 3e-4 for both parts), in the order of :data:`STAGES`."""
        vqvae, prior = self.model.vqvae, self.model.prior
        params = {'vq': list(vqvae.parameters()), 'prior': list(prior.parameters()),
                  'joint': list(prior.parameters()) + list(vqvae.decoder.parameters())}
        kind = {'adam': torch.optim.Adam, 'adamw': torch.optim.AdamW, 'sgd': torch.optim.SGD}[self.training_config.opt]
        optimizers, schedulers = [], []
        for stage in STAGES:
            settings = self._optimizer_settings(stage)
            groups = [dict(group, weight_decay=settings['weight_decay'] if group['decays'] else 0.0)
                      for group in self._param_groups(params[stage])]
            optimizer = kind(groups, **{key: value for key, value in settings.items() if key != 'weight_decay'})
            optimizers.append(optimizer)
            schedulers.append({'scheduler': self._make_scheduler(optimizer, stage), 'interval': 'step'})
        return optimizers, schedulers

    def on_train_start(self):
        """On ``--resume`` Lightning restores each optimizer's settings (learning rate, weight decay, betas) from
        the checkpoint, over the ones just built from the config: put the config's back, so a changed ``lr`` is
        the one that trains (the runner has checked that the optimizer and schedule kinds are unchanged)."""
        if self.trainer.ckpt_path is None:
            return
        for stage, optimizer, scheduler in zip(STAGES, self.optimizers(), self.lr_schedulers()):
            optimizer = getattr(optimizer, 'optimizer', optimizer)     # Lightning's wrapper
            settings = self._optimizer_settings(stage)
            lr = settings.pop('lr')
            for group in optimizer.param_groups:
                # the schedule's anchors (onecycle's peak and bounds, or the constant/cosine base) scale to the lr
                scale = lr / group.get('max_lr', group['initial_lr'])
                for key in ('initial_lr', 'max_lr', 'min_lr'):
                    if key in group:
                        group[key] *= scale
                group.update(settings, weight_decay=settings['weight_decay'] if group.get('decays', True) else 0.0)
            scheduler.base_lrs = [group['initial_lr'] for group in optimizer.param_groups]
            # the current step's learning rate from the new values: one step back, one step forward
            scheduler.last_epoch -= 1
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', UserWarning)
                scheduler.step()

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        index = STAGES.index(self.stage)
        optimizer = self.optimizers()[index]
        # the decoder trained beside the prior (disjoint parameters, one backward) keeps stage vq's optimizer,
        # whose moments it continues, at the learning rate stage vq ended with
        decoder_optimizer = (self.optimizers()[STAGES.index('vq')]
                             if self.stage == 'prior' and self.training_config.train_decoder_with_prior else None)
        for each in (optimizer, decoder_optimizer):
            if each is not None:
                each.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        clip = self.training_config.clip_grad
        if clip:
            self.clip_gradients(optimizer, gradient_clip_val=float(clip),
                                gradient_clip_algorithm=self.training_config.clip_mode)
        optimizer.step()
        self.lr_schedulers()[index].step()
        if decoder_optimizer is not None:
            decoder_optimizer.step()
        if self.prior_average is not None and self.stage != 'vq':
            self.prior_average.update(self.model.prior)

    # ------------------------------------------------------------------ the prior's weight average
    def on_validation_epoch_start(self):
        if self.prior_average is not None:
            self.prior_average.hold_average(self.model.prior)

    def on_validation_epoch_end(self):
        if self.prior_average is not None:
            self.prior_average.hold_trained(self.model.prior)

    def on_train_end(self):
        # the fitted model is the average, as in Lightning's WeightAveraging: a test that follows fit in the same
        # process (OpenSTL's) scores it; a checkpoint written after this still stores both (PriorAverage.pack)
        if self.prior_average is not None:
            self.prior_average.hold_average(self.model.prior)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """With ``prior_ema_decay`` the file's ``state_dict`` holds the averaged prior (what tests and predictions
        read), the live one beside it (:meth:`PriorAverage.pack`)."""
        if self.prior_average is not None:
            self.prior_average.pack(checkpoint, PRIOR_PREFIX)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """``--resume`` continues training from the live prior, and the average from the saved one; any other load
        (testing, ``load_from_checkpoint``) keeps the average as the prior."""
        if self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING:
            PriorAverage.unpack(checkpoint, PRIOR_PREFIX, self.prior_average, self.model.prior)

    # ------------------------------------------------------------------ losses of the three stages
    def vq_loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Stage ``vq``: HR-VQVAE loss (eq. 4) on the frames of the clips, frames: (B, T, C, H, W).

        With ``vq_frames = n`` each clip contributes n random frames instead of all T: the tokenizer sees
        frames independently, and consecutive frames of a clip are nearly the same, so a step on n << T
        frames costs n / T of the compute and, on Moving MNIST, reconstructs as well after the same number
        of steps (4 of 20 frames: recon MSE 0.0033 vs 0.0034 per pixel after 192 steps, 4.4x faster).
        """
        out = self.model.vqvae(self._tokenizer_frames(frames)[0])
        logs = {'recon_loss': out.recon_loss, 'vq_loss': out.vq_loss}
        for layer, (perplexity, usage) in enumerate(zip(out.perplexity, out.usage)):
            logs[f'perplexity_l{layer + 1}'] = perplexity
            logs[f'usage_l{layer + 1}'] = usage
        return out.loss, logs

    def _tokenizer_frames(self, frames: torch.Tensor, *aligned: torch.Tensor) -> list[torch.Tensor]:
        """The frames of each clip the tokenizer trains on, (B, T, ...) -> (B, n, ...): ``vq_frames`` = n random
        ones per clip, or all T; each of ``aligned`` (B, T, ...) is cut to the same frames."""
        batch, length = frames.shape[:2]
        vq_frames = self.training_config.vq_frames
        if vq_frames is None or vq_frames >= length:
            return [frames, *aligned]
        chosen = torch.rand(batch, length, device=frames.device).argsort(dim=1)[:, :vq_frames]
        clips = torch.arange(batch, device=frames.device)[:, None]
        return [tensor[clips, chosen] for tensor in (frames, *aligned)]

    def prior_loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Stage ``prior``: cross-entropy of the codes (eq. 7), frames: (B, T, C, H, W).

        ``prior_loss_frames = 'all'`` scores every frame after the first instead of the future ones only:
        the trunk computes their contexts anyway, and each is a next-frame prediction as good as a future one.
        ``prior_resample_prob = p`` trains on self-resampled histories (:meth:`STPixelCNN.resample_history`):
        each past frame is, with probability p, the prior's own one-step prediction, so that it learns to
        recover from its mistakes instead of drifting when it rolls out on its own predictions.
        With ``future_order = 'masked'`` the trunk reads the future frames through a random training mask
        (:meth:`STPixelCNN.training_mask`); the input frames' next-frame targets are unchanged.
        With ``train_decoder_with_prior`` the loss adds the decoder's reconstruction MSE of ``vq_frames`` frames
        per clip from their codes (eq. 4's first term; the codes do not change, so neither does the prior's task).
        """
        with torch.no_grad():
            indices = self.model.vqvae.encode(frames)
        cross_entropy = self._prior_cross_entropy(indices)
        if not self.training_config.train_decoder_with_prior:
            return cross_entropy, {}
        vqvae = self.model.vqvae
        targets, codes = self._tokenizer_frames(frames, indices)
        with torch.no_grad():
            latent = vqvae.quantizer.decode_indices(codes.flatten(0, 1))
        recon = F.mse_loss(vqvae.decode_latent(latent), targets.flatten(0, 1))
        return cross_entropy + recon, {'prior_ce': cross_entropy, 'recon_loss': recon}

    def _prior_cross_entropy(self, indices: torch.Tensor) -> torch.Tensor:
        """Eq. 7 on the codes ``(B, T, L, h, w)``, with the configured loss frames and history resampling."""
        prior, config = self.model.prior, self.training_config
        history = None
        if config.prior_resample_prob > 0:
            keep = self.hparams.pre_seq_length if config.prior_resample_frames == 'future' else 1
            with torch.no_grad():
                history = prior.resample_history(indices, config.prior_resample_prob,
                                                 config.prior_resample_temperature, config.prior_resample_rounds,
                                                 keep_frames=keep)
        shown = None
        if prior.future_order == 'masked':
            shown = prior.training_mask(indices, self.hparams.pre_seq_length)
        first_frame = 1 if config.prior_loss_frames == 'all' else self.hparams.pre_seq_length
        return prior.loss(indices, first_frame, history=history, layer_weights=config.prior_layer_weights,
                          shown=shown)

    def joint_loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Stage ``joint`` (eq. 9): L_prior + lambda * ||x - D(e_C(predicted codes))||^2, frames (B, T, C, H, W).

        L_prior is the prior stage's cross-entropy (eq. 7). The predicted codes are a rollout decoded as at
        test time: every future frame from the prior's own earlier frames, every layer under the parents the
        prior chose (:meth:`SHRVQVAE_Model.differentiable_rollout`). Their straight-through weights give the
        reconstruction term a gradient into the prior as well as the decoder, so lambda sets how much the
        prior's choices are pulled towards codes that decode to the true frames.
        """
        num_context = self.hparams.pre_seq_length
        with torch.no_grad():
            indices = self.model.vqvae.encode(frames)          # encoded once, for both terms
        prior_loss = self._prior_cross_entropy(indices)
        decoded = self.model.differentiable_rollout(indices[:, :num_context])
        recon = F.mse_loss(decoded, frames[:, num_context:])
        loss = prior_loss + self.training_config.joint_lambda * recon
        return loss, {'prior_ce': prior_loss, 'pred_recon_loss': recon}

    def training_step(self, batch, batch_idx):
        batch_x, batch_y = batch
        frames = torch.cat([batch_x, batch_y], dim=1)
        loss, logs = getattr(self, f'{self.stage}_loss')(frames)
        self._optimizer_step(loss)
        self.log('train_loss', loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log('stage', float(STAGES.index(self.stage)), on_step=True, on_epoch=False)
        for name, value in logs.items():
            self.log(f'{self.stage}/{name}', value, on_step=True, on_epoch=True)
        return loss

    # ------------------------------------------------------------------ validation
    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=0):
        self.model.vqvae.check_range(batch[1])

    def on_test_batch_start(self, batch, batch_idx, dataloader_idx=0):
        self.model.vqvae.check_range(batch[1])

    def validation_step(self, batch, batch_idx):
        """``val_loss`` = MSE of really predicted frames (the test's units); ``val_recon_loss`` = tokenizer
        reconstruction MSE of the future frames, in the same units."""
        loss = super().validation_step(batch, batch_idx)
        batch_y = batch[1]
        recon = self.model.vqvae(batch_y).reconstruction
        self.log('val_recon_loss', frame_sum_mse(recon, batch_y, self.hparams.get('test_std')), on_step=False,
                 on_epoch=True, sync_dist=True)
        return loss
