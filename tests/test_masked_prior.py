"""The prior's masked future order (MaskGIT-style): what the trunk may read, train/decode consistency, shared
contexts, learning, invalid settings (the runner's one-line refusals are in test_bad_inputs.py)."""
import math

import pytest
import torch

from openstl_hrvq.models import STPixelCNN
from openstl_hrvq.models.shrvqvae_model import SHRVQVAE_Model


def masked_prior(**kwargs):
    """A small double-precision masked prior with random weights (an untrained one decodes near-uniform noise,
    which would hide bugs in confidence ordering)."""
    torch.manual_seed(0)
    config = dict(hidden_channels=16, num_blocks=2, num_heads=2, max_frames=8, local_blocks=1,
                  future_order='masked')
    config.update(kwargs)
    prior = STPixelCNN(3, 4, **config).double()
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.normal_(0, 0.3)
    return prior


def all_future_hidden(clip, num_context):
    shown = torch.zeros_like(clip[:, :, 0], dtype=torch.bool)
    shown[:, :num_context] = True
    return shown


def test_hidden_tokens_are_invisible_and_shown_ones_are_read():
    """Perturbing a hidden history token changes no logit; perturbing a shown one changes the later frames."""
    prior = masked_prior()
    torch.manual_seed(1)
    clip = torch.randint(0, 4, (2, 8, 3, 4, 4))
    shown = prior.training_mask(clip, 4)
    shown[:, 5, 1, 2] = False
    shown[:, 6, 2, 1] = True
    with torch.no_grad():
        reference = prior(clip, first_frame=1, shown=shown)
        hidden_changed, shown_changed = clip.clone(), clip.clone()
        hidden_changed[:, 5, :, 1, 2] = (clip[:, 5, :, 1, 2] + 1) % 4
        shown_changed[:, 6, :, 2, 1] = (clip[:, 6, :, 2, 1] + 1) % 4
        hidden = prior(clip, first_frame=1, history=hidden_changed, shown=shown)
        revealed = prior(clip, first_frame=1, history=shown_changed, shown=shown)
    assert torch.equal(hidden, reference)
    assert torch.equal(revealed[:, :6], reference[:, :6])          # frames up to 6 cannot see frame 6
    assert not torch.allclose(revealed[:, 6:], reference[:, 6:])


def test_one_step_decoding_is_what_training_scores_with_every_future_token_hidden():
    """masked_steps = 1 argmax decodes, layer by layer, the argmax of the logits the training loss uses when
    every future token is hidden: training and decoding see the same inputs. It depends on the inputs alone."""
    prior = masked_prior()
    torch.manual_seed(2)
    context = torch.randint(0, 4, (3, 4, 3, 4, 4))
    future = prior.predict(context, 4, temperature=0.0, steps=1)
    clip = torch.cat([context, future], dim=1)
    with torch.no_grad():
        logits = prior(clip, first_frame=4, shown=all_future_hidden(clip, 4))
    assert torch.equal(logits.argmax(dim=3), future)
    assert len({tuple(frame.flatten().tolist()) for frame in future[0]}) > 1    # not one frame repeated


@pytest.mark.parametrize('steps', [1, 3])
@pytest.mark.parametrize('temperature', [0.0, 1.0], ids=['argmax', 'sampled'])
def test_shared_context_equals_repeated_clips(steps, temperature):
    """samples = N shares the first refinement's trunk pass and decodes what N copies of each clip decode."""
    prior = masked_prior()
    context = torch.randint(0, 4, (2, 4, 3, 4, 5))
    torch.manual_seed(3)
    shared = prior.predict(context, 4, temperature=temperature, samples=3, steps=steps)
    torch.manual_seed(3)
    repeated = prior.predict(context.repeat_interleave(3, dim=0), 4, temperature=temperature, steps=steps)
    assert shared.shape == (6, 4, 3, 4, 5)
    assert torch.equal(shared, repeated)
    if temperature > 0:
        assert not torch.equal(shared[0], shared[1])


def test_refinements_change_the_later_frames_only():
    """Later refinements read the tokens earlier ones showed, so the later future frames differ from the
    one-step prediction; the first future frame's context is the inputs alone, so at argmax every refinement
    decodes it as the first did."""
    prior = masked_prior()
    torch.manual_seed(4)
    context = torch.randint(0, 4, (4, 4, 3, 4, 4))
    one = prior.predict(context, 4, temperature=0.0, steps=1)
    several = prior.predict(context, 4, temperature=0.0, steps=4)
    assert several.shape == one.shape and not torch.equal(several, one)
    # the first frame has no hidden history before it: every refinement decodes it from the inputs alone
    assert torch.equal(several[:, 0], one[:, 0])


def test_training_mask_follows_the_cosine_schedule_and_shows_the_inputs():
    prior = masked_prior()
    torch.manual_seed(5)
    clips = torch.zeros(4000, 6, 3, 4, 4, dtype=torch.long)
    shown = prior.training_mask(clips, 2)
    assert shown[:, :2].all()
    hidden_fraction = (~shown[:, 2:]).float().mean(dim=(1, 2, 3))
    assert hidden_fraction.mean().item() == pytest.approx(2 / math.pi, abs=0.02)       # E[cos(pi u / 2)]
    assert (hidden_fraction > 0.95).float().mean().item() == pytest.approx(0.2, abs=0.04)


@pytest.mark.parametrize('steps', [1, 3])
def test_masked_prior_learns_and_reproduces_a_fixed_sequence(steps):
    torch.manual_seed(1)
    codes = torch.randint(0, 4, (2, 4, 3, 4, 4))
    prior = STPixelCNN(3, 4, hidden_channels=32, num_blocks=2, num_heads=2, max_frames=8, future_order='masked')
    optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
    for _ in range(600):
        loss = prior.loss(codes, first_frame=2, shown=prior.training_mask(codes, 2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert prior.loss(codes, 2, shown=all_future_hidden(codes, 2)).item() < 0.05
    assert torch.equal(prior.predict(codes[:, :2], 2, steps=steps), codes[:, 2:])


def test_model_predicts_with_the_masked_order_at_any_horizon():
    model = SHRVQVAE_Model([4, 1, 16, 16], 4, 4, vq_layers=2, vq_hidden=8, vq_res_hidden=4, vq_res_blocks=1,
                           prior_hidden=8, prior_blocks=1, prior_heads=2, future_order='masked', masked_steps=2,
                           sample_temperature=1.0, decoding_samples=2)
    with torch.no_grad():
        assert model(torch.rand(2, 4, 1, 16, 16)).shape == (2, 4, 1, 16, 16)
        assert model.rollout(torch.rand(2, 4, 1, 16, 16), 7).shape == (2, 7, 1, 16, 16)


def test_invalid_masked_settings_raise_one_clear_error():
    with pytest.raises(ValueError, match="needs decode_order='parallel'"):
        STPixelCNN(3, 4, decode_order='raster', future_order='masked')
    with pytest.raises(ValueError, match='future_order must be one of'):
        STPixelCNN(3, 4, future_order='joint')
    rollout, masked = STPixelCNN(3, 4, hidden_channels=8, num_blocks=1, num_heads=2), masked_prior()
    clip = torch.zeros(1, 4, 3, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="built with future_order='rollout'"):
        rollout(clip, 1, shown=torch.ones(1, 4, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'shown must be a bool tensor of shape \(1, 4, 4, 4\)'):
        masked(clip, 1, shown=torch.ones(1, 4, 4, 4))
    with pytest.raises(ValueError, match='never reads its own earlier predictions'):
        masked.resample_history(clip, 0.5)
    with pytest.raises(ValueError, match='steps must be a positive integer'):
        masked.predict(clip, 2, steps=0)


def test_joint_stage_scores_the_frames_the_masked_order_predicts():
    """Eq. 9's reconstruction term decodes the masked order's own prediction (one refinement, argmax), with the
    logits that prediction was decoded from."""
    torch.manual_seed(6)
    model = SHRVQVAE_Model([4, 1, 16, 16], 4, 4, vq_layers=2, vq_hidden=8, vq_res_hidden=4, vq_res_blocks=1,
                           prior_hidden=8, prior_blocks=1, prior_heads=2, future_order='masked')
    batch_x = torch.rand(2, 4, 1, 16, 16)
    with torch.no_grad():
        context = model.vqvae.encode(batch_x)
        predicted = model(batch_x)
    decoded = model.differentiable_rollout(context)
    torch.testing.assert_close(decoded, predicted)
    decoded.sum().backward()
    assert model.prior.mask_embedding.grad.abs().sum() > 0


def test_flops_count_every_refinement():
    """fvcore traces the masked decoding (its confidence ranking included); more refinements cost more."""
    from openstl_hrvq.model_info import count_flops
    sample = torch.rand(1, 4, 1, 16, 16)
    flops = []
    for steps in (1, 3):
        model = SHRVQVAE_Model([4, 1, 16, 16], 4, 4, vq_layers=2, vq_hidden=8, vq_res_hidden=4, vq_res_blocks=1,
                               prior_hidden=8, prior_blocks=1, prior_heads=2, future_order='masked',
                               masked_steps=steps)
        flops.append(count_flops(model, sample)[0])
    assert 0 < flops[0] < flops[1]
