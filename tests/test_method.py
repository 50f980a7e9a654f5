"""The SHRVQVAE method: stage schedule, freezing, joint training from predicted codes, val_loss."""
import copy

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from openstl_hrvq.errors import ConfigError
from openstl_hrvq.methods import SHRVQVAE, StageSchedule, TrainingConfig
from tests.helpers import TINY_MODEL, square_loaders


def make_method(tmp_path, **overrides):
    config = dict(TINY_MODEL, vq_epochs=1, prior_epochs=1, joint_epochs=1, epoch=3, lr=3e-3,
                  metrics=['mse', 'mae'])
    config.update(overrides)
    return SHRVQVAE(steps_per_epoch=4, test_mean=0.0, test_std=1.0, save_dir=str(tmp_path), **config)


def test_schedule_boundaries():
    schedule = StageSchedule(vq_epochs=2, prior_epochs=3, joint_epochs=1)
    assert [schedule.stage_at(e) for e in range(7)] == ['vq', 'vq', 'prior', 'prior', 'prior', 'joint', 'joint']
    assert schedule.first_epoch('prior') == 2 and schedule.first_epoch('joint') == 5
    disjoint = StageSchedule(vq_epochs=1, prior_epochs=2)
    assert [disjoint.stage_at(e) for e in range(4)] == ['vq', 'prior', 'prior', 'prior']
    assert (schedule.final_stage, disjoint.final_stage) == ('joint', 'prior')
    assert StageSchedule(vq_epochs=2, prior_epochs=0).final_stage == 'vq'


def test_schedule_scales_to_budget():
    scaled = StageSchedule(vq_epochs=50, prior_epochs=150).scaled_to(8)
    assert scaled.lengths == {'vq': 2, 'prior': 6, 'joint': 0}
    tiny = StageSchedule(vq_epochs=40, prior_epochs=110, joint_epochs=50).scaled_to(3)
    assert tiny.lengths == {'vq': 1, 'prior': 1, 'joint': 1}
    assert StageSchedule.from_config({'vq_epochs': 1, 'prior_epochs': 3, 'epoch': 4}).total_epochs == 4
    with pytest.raises(ValueError, match='too short'):
        StageSchedule(vq_epochs=1, prior_epochs=1, joint_epochs=1).scaled_to(2)
    with pytest.raises(ValueError, match='non-negative'):
        StageSchedule(vq_epochs=-1, prior_epochs=1)


class Snapshots(pl.Callback):
    """Copies of every tensor of the model (parameters and buffers) at the start and end of each epoch."""

    def __init__(self):
        self.start, self.end, self.stages = {}, {}, {}

    def on_train_epoch_start(self, trainer, module):
        self.start[trainer.current_epoch] = copy.deepcopy(module.model.state_dict())

    def on_train_epoch_end(self, trainer, module):
        self.end[trainer.current_epoch] = copy.deepcopy(module.model.state_dict())
        self.stages[trainer.current_epoch] = module.stage


def changed(before, after, prefix):
    keys = [key for key in before if key.startswith(prefix) and before[key].is_floating_point()]
    assert keys, prefix
    return any(not torch.equal(before[key], after[key]) for key in keys)


def test_stages_switch_on_schedule_and_freeze_what_they_must(tmp_path):
    method = make_method(tmp_path)
    snapshots = Snapshots()
    trainer = pl.Trainer(max_epochs=3, accelerator='cpu', logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, callbacks=[snapshots], limit_val_batches=1,
                         num_sanity_val_steps=0)
    train, val, _ = square_loaders()
    trainer.fit(method, train, val)
    assert snapshots.stages == {0: 'vq', 1: 'prior', 2: 'joint'}
    assert trainer.global_step == 3 * len(train)
    start, end = snapshots.start, snapshots.end
    # stage vq: the tokenizer (incl. EMA codebooks) learns, the prior does not move
    assert changed(start[0], end[0], 'vqvae.encoder') and changed(start[0], end[0], 'vqvae.quantizer')
    assert not changed(start[0], end[0], 'prior.')
    # stage prior: the tokenizer is frozen (no gradient step, no EMA update), the prior learns
    assert not changed(start[1], end[1], 'vqvae.')
    assert changed(start[1], end[1], 'prior.')
    # stage joint: encoder and codebooks frozen; prior and decoder learn
    assert not changed(start[2], end[2], 'vqvae.encoder') and not changed(start[2], end[2], 'vqvae.quantizer')
    assert changed(start[2], end[2], 'vqvae.decoder') and changed(start[2], end[2], 'prior.')


def test_train_decoder_with_prior_trains_the_decoder_on_the_frozen_codes(tmp_path):
    """With train_decoder_with_prior the prior stage also steps the decoder: the encoder and codebooks (hence the
    codes) stay, the decoder reconstructs those codes better after the stage, and the prior's own update is the
    one it gets without the key (disjoint parameters: the reconstruction term does not reach it)."""
    train, val, _ = square_loaders()
    ends = {}
    for with_decoder in (False, True):
        torch.manual_seed(0)
        method = make_method(tmp_path, joint_epochs=0, epoch=2, train_decoder_with_prior=with_decoder)
        snapshots = Snapshots()
        pl.Trainer(max_epochs=2, accelerator='cpu', logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, callbacks=[snapshots], limit_val_batches=1,
                   num_sanity_val_steps=0).fit(method, train, val)
        start, end = snapshots.start[1], snapshots.end[1]
        assert not changed(start, end, 'vqvae.encoder') and not changed(start, end, 'vqvae.quantizer')
        assert changed(start, end, 'vqvae.decoder') == with_decoder
        ends[with_decoder] = (start, end, method)
    start, end, method = ends[True]
    for key in (key for key in end if key.startswith('prior.')):
        torch.testing.assert_close(end[key], ends[False][1][key])
    _, _, frames = joint_batch()
    vqvae = method.model.vqvae

    def reconstruction_error(state):
        vqvae.load_state_dict({key[len('vqvae.'):]: value for key, value in state.items() if key.startswith('vqvae.')})
        with torch.no_grad():
            return F.mse_loss(vqvae.decode_indices(vqvae.encode(frames)), frames).item()

    assert reconstruction_error(end) < reconstruction_error(start)


def joint_batch():
    train, _, _ = square_loaders()
    batch_x, batch_y = next(iter(train))
    return batch_x, batch_y, torch.cat([batch_x, batch_y], dim=1)


def test_joint_loss_decodes_the_rollout_the_model_predicts_at_test_time(tmp_path):
    method = make_method(tmp_path)
    method._set_stage('joint')
    batch_x, batch_y, frames = joint_batch()
    vqvae, prior = method.model.vqvae, method.model.prior
    with torch.no_grad():
        context = vqvae.encode(batch_x)
        rollout = prior.predict(context, 4)                      # every layer under predicted parents
        teacher_forced = prior(vqvae.encode(frames), first_frame=4).argmax(dim=3)
    if torch.equal(rollout, teacher_forced):
        pytest.skip('the untrained prior decoded the same codes with and without teacher forcing')
    # the frames the joint loss scores are the frames the model predicts
    assert torch.allclose(method.model.differentiable_rollout(context), method.model(batch_x), atol=1e-6)

    method.zero_grad()
    loss, logs = method.joint_loss(frames)
    loss.backward()
    decoder_grad = [p.grad.clone() for p in vqvae.decoder.parameters()]
    assert any(g.abs().sum() > 0 for g in decoder_grad)
    assert all(p.grad is None for p in vqvae.encoder.parameters())

    def decoder_gradient(codes):
        vqvae.decoder.zero_grad()
        (method.training_config.joint_lambda * F.mse_loss(vqvae.decode_indices(codes), batch_y)).backward()
        return [p.grad.clone() for p in vqvae.decoder.parameters()]

    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(decoder_grad, decoder_gradient(rollout)))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(decoder_grad, decoder_gradient(teacher_forced)))
    assert set(logs) == {'prior_ce', 'pred_recon_loss'}


def test_joint_lambda_changes_the_prior_update(tmp_path):
    _, _, frames = joint_batch()
    start = make_method(tmp_path).model.state_dict()
    updated = {}
    for joint_lambda in (0.11, 1.0):
        method = make_method(tmp_path, joint_lambda=joint_lambda)
        method.model.load_state_dict(start)
        method._set_stage('joint')
        optimizer = torch.optim.Adam([p for p in method.model.prior.parameters() if p.requires_grad], lr=1e-3)
        loss, _ = method.joint_loss(frames)
        loss.backward()
        optimizer.step()
        updated[joint_lambda] = torch.cat([p.detach().flatten() for p in method.model.prior.parameters()])
    moved = (updated[0.11] - updated[1.0]).abs()
    assert moved.max() > 1e-4, 'the reconstruction term does not reach the prior: lambda changes nothing'


def test_val_loss_is_mse_of_predicted_frames(tmp_path):
    method = make_method(tmp_path)
    method.eval()
    _, val, _ = square_loaders()
    batch_x, batch_y = next(iter(val))
    logged = {}
    method.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    with torch.no_grad():
        method.validation_step((batch_x, batch_y), 0)
        # the test's MSE: the per-pixel mean times the C x H x W = 16 x 16 values of a frame
        expected = F.mse_loss(method(batch_x), batch_y).item() * 16 * 16
    assert logged['val_loss'] == pytest.approx(expected, rel=1e-5)
    assert 'val_recon_loss' in logged


def test_vq_frames_trains_the_tokenizer_on_distinct_frames_of_each_clip(tmp_path):
    method = make_method(tmp_path, vq_frames=3)
    method._set_stage('vq')
    clips = torch.rand(4, 8, 1, 16, 16)
    seen = []
    method.model.vqvae.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    method.vq_loss(clips)
    (frames,) = seen
    assert frames.shape == (4, 3, 1, 16, 16)
    for clip, chosen in zip(clips, frames):
        sources = [next(t for t in range(8) if torch.equal(frame, clip[t])) for frame in chosen]
        assert len(set(sources)) == 3
    seen.clear()
    everything = make_method(tmp_path)
    everything.model.vqvae.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    everything.vq_loss(clips)
    assert torch.equal(seen[0], clips)
    with pytest.raises(ValueError, match="'vq_frames' must be an integer >= 1 or None, got 0"):
        make_method(tmp_path, vq_frames=0)


def test_training_config_takes_defaults_for_unset_keys_and_rejects_bad_values():
    """The method's training keys: None (the runner's "unset") gives the default, a stage lr overrides lr."""
    config = TrainingConfig.from_config({'lr': None, 'prior_lr': 2e-3, 'sched': 'cosine', 'opt_betas': [0.5, 0.9],
                                         'in_shape': (10, 1, 64, 64)})
    assert (config.lr, config.stage_lr('prior'), config.stage_lr('vq')) == (3e-4, 2e-3, 3e-4)
    assert config.sched == 'cosine' and config.opt_betas == (0.5, 0.9) and config.joint_lambda == 0.11
    with pytest.raises(ConfigError, match="'sched' must be one of 'constant', 'none', 'cosine', 'onecycle', got 'linear'"):
        TrainingConfig.from_config({'sched': 'linear'})
    with pytest.raises(ConfigError, match="'prior_resample_rounds' must be an integer >= 1, got 0"):
        TrainingConfig.from_config({'prior_resample_rounds': 0})
