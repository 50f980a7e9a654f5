"""SHRVQVAE_Model: OpenSTL's shape contract for Moving-MNIST and KTH configs, size, config handling, errors."""
import inspect

import pytest
import torch

from openstl_hrvq.methods import SHRVQVAE_METHOD
from openstl_hrvq.models import HRVQVAE, SHRVQVAE_Model, STPixelCNN

MMNIST = dict(in_shape=(10, 1, 64, 64), pre_seq_length=10, aft_seq_length=10)  # every other key at its default
KTH_TINY = dict(in_shape=(10, 1, 128, 128), pre_seq_length=10, aft_seq_length=20, vq_layers=3,
                vq_codebook_size=8, vq_latent_dim=8, vq_hidden=8, vq_res_hidden=4, vq_res_blocks=1,
                prior_hidden=8, prior_blocks=1, prior_heads=2)
TINY = dict(in_shape=(3, 1, 16, 16), pre_seq_length=3, aft_seq_length=2, vq_hidden=8, vq_res_hidden=4,
            vq_res_blocks=1, prior_hidden=8, prior_blocks=1, prior_heads=2)


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def predict(config, batch_size):
    torch.manual_seed(0)
    model = SHRVQVAE_Model(**config).eval()
    T, C, H, W = config['in_shape']
    with torch.no_grad():
        return model, model(torch.rand(batch_size, T, C, H, W))


def check_prediction(prediction, shape):
    assert prediction.shape == shape
    assert prediction.dtype == torch.float32
    assert 0.0 <= float(prediction.min()) and float(prediction.max()) <= 1.0


def test_default_moving_mnist_model_is_small_and_predicts_the_future():
    model, prediction = predict(MMNIST, batch_size=2)
    assert isinstance(model.vqvae, HRVQVAE) and isinstance(model.prior, STPixelCNN)
    assert model.vqvae.num_layers == 3 and model.vqvae.codebook_size == 4 and model.vqvae.latent_dim == 4
    assert count_parameters(model) <= 1_500_000
    check_prediction(prediction, (2, 10, 1, 64, 64))


def test_kth_model_predicts_twenty_frames():
    model, prediction = predict(KTH_TINY, batch_size=1)
    assert model.vqvae.codebook_size == 8 and model.vqvae.latent_dim == 8
    check_prediction(prediction, (1, 20, 1, 128, 128))


def test_raster_order_is_used_when_configured():
    config = dict(TINY, decode_order='raster')
    model, prediction = predict(config, batch_size=2)
    check_prediction(prediction, (2, 2, 1, 16, 16))
    assert model.decode_order == 'raster' and model.prior.decode_order == 'raster'
    frames = torch.rand(1, 3, 1, 16, 16)
    with torch.no_grad():
        context = model.vqvae.encode(frames)
        expected = model.vqvae.decode_indices(model.prior.predict(context, 2))
        torch.testing.assert_close(model(frames), expected)


@pytest.mark.parametrize('order', ['parallel', 'raster'])
def test_differentiable_rollout_is_the_prediction_with_a_gradient_into_the_prior(order):
    torch.manual_seed(0)
    model = SHRVQVAE_Model(**dict(TINY, decode_order=order)).eval()
    frames = torch.rand(2, 3, 1, 16, 16)
    context = model.vqvae.encode(frames)
    rollout = model.differentiable_rollout(context)
    torch.testing.assert_close(rollout, model(frames))
    rollout.square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior.parameters())


def test_mean_of_samples_averages_each_clips_own_rollouts():
    """At a vanishing temperature every sampled rollout is the argmax rollout, so the mean of N of them is the
    argmax prediction of the same clip (a mix-up of clips across the batch would break this); at T = 1 the
    mean of N rollouts is the average of N different frame sequences, hence not any single one of them."""
    frames = torch.rand(3, 3, 1, 16, 16)
    torch.manual_seed(0)
    argmax = SHRVQVAE_Model(**TINY).eval()
    with torch.no_grad():
        argmax.prior.decoder.out_bias.normal_()    # untrained ReLU features tie logits exactly; break the ties
    peaked = SHRVQVAE_Model(**TINY, sample_temperature=1e-6, decoding_samples=4).eval()
    peaked.load_state_dict(argmax.state_dict())
    assert argmax.decoding == 'argmax' and peaked.decoding == 'mean of 4 samples (T=1e-06)'
    with torch.no_grad():
        torch.testing.assert_close(peaked(frames), argmax(frames))
        peaked.sample_temperature = 1.0
        mean = peaked(frames)
        peaked.decoding_samples = 1
        single = peaked(frames)
    check_prediction(mean, (3, 2, 1, 16, 16))
    assert not torch.equal(mean, single)


def test_mean_of_samples_is_the_mean_of_rollouts_of_each_clip_decoded_one_by_one():
    """The mean of N (whose rollouts share one trunk pass over each clip's context) equals, at the same seed,
    the mean of the frames decoded from N rollouts of every clip's context repeated N times; a clip's
    prediction does not depend on the other clips of the batch; shape (B, T, C, H, W)."""
    torch.manual_seed(0)
    model = SHRVQVAE_Model(**dict(TINY, prior_local_blocks=1), sample_temperature=1.0, decoding_samples=3)
    frames = torch.rand(2, 3, 1, 16, 16)
    with torch.no_grad():
        model.vqvae(frames)                     # the quantizer's data-dependent start: codes that vary
        model.eval()
        torch.manual_seed(7)
        mean = model(frames)
        torch.manual_seed(7)
        context = model.vqvae.encode(frames).repeat_interleave(3, dim=0)
        rollouts = model.vqvae.decode_indices(model.prior.predict(context, 2, temperature=1.0))
        other = frames.clone()
        other[1] = 1.0 - frames[1]
        assert not torch.equal(model.vqvae.encode(other[1]), model.vqvae.encode(frames[1]))
        torch.manual_seed(7)
        changed = model(other)
    assert mean.shape == (2, 2, 1, 16, 16)
    torch.testing.assert_close(mean, rollouts.unflatten(0, (2, 3)).mean(dim=1), rtol=0, atol=1e-6)
    torch.testing.assert_close(changed[0], mean[0], rtol=0, atol=1e-6)
    assert not torch.equal(changed[1], mean[1])


@pytest.mark.parametrize('order', ['parallel', 'raster'])
def test_expected_codewords_estimate_the_drawn_latent_mean_with_less_variance(order):
    """decoding_codewords='expected' renders sum_k p(k) e_i(parent, k) at every layer, given the drawn parents.
    By the tower rule its mean over rollouts is the drawn latent's mean (both are Monte-Carlo estimates of one
    expectation: they agree within a few standard errors over 3,000 rollouts), and it varies less from rollout
    to rollout (a misaligned weight -- another layer's, another parent's -- would break one or the other)."""
    torch.manual_seed(0)
    model = SHRVQVAE_Model(**dict(TINY, decode_order=order), sample_temperature=1.0).eval()
    frames = torch.rand(1, 3, 1, 16, 16)
    rollouts = 3000
    with torch.no_grad():
        model.vqvae(frames)
        model.eval()
        context = model.vqvae.encode(frames)
        future, distributions = model.prior.predict(context, 1, temperature=1.0, samples=rollouts, probabilities=True)
        quantizer = model.vqvae.quantizer
        drawn = quantizer.decode_indices(future[:, 0])                                  # (N, D, h, w)
        expected = quantizer.decode_weighted(future[:, 0], distributions[:, 0])
    standard_error = drawn.std(dim=0) / rollouts ** 0.5
    assert ((expected.mean(dim=0) - drawn.mean(dim=0)).abs() <= 4 * standard_error + 1e-6).float().mean() > 0.99
    assert expected.var(dim=0).sum() < 0.8 * drawn.var(dim=0).sum()


def test_expected_codewords_change_the_rendering_not_the_rollout():
    """At one seed both renderings decode the same draws: with one rollout per clip the expected rendering is
    decode_weighted of that rollout's tokens and distributions, and it differs from the drawn rendering."""
    torch.manual_seed(0)
    model = SHRVQVAE_Model(**TINY, sample_temperature=1.0, decoding_codewords='expected').eval()
    frames = torch.rand(2, 3, 1, 16, 16)
    assert model.decoding == 'sample (T=1), expected codewords'
    with torch.no_grad():
        model.vqvae(frames)
        model.eval()
        torch.manual_seed(4)
        prediction = model(frames)
        torch.manual_seed(4)
        future, distributions = model.prior.predict(model.vqvae.encode(frames), 2, temperature=1.0,
                                                    probabilities=True)
        model.set_decoding(1.0, 1, 'sampled')
        torch.manual_seed(4)
        drawn = model(frames)
    check_prediction(prediction, (2, 2, 1, 16, 16))
    torch.testing.assert_close(prediction, model.vqvae.decode_weighted(future, distributions))
    torch.testing.assert_close(drawn, model.vqvae.decode_indices(future))
    assert not torch.equal(prediction, drawn)


def test_unknown_config_keys_are_ignored_and_model_keys_are_accepted():
    model = SHRVQVAE_Model(**TINY, method='SHRVQVAE', lr=3e-4, epoch=200, batch_size=16)
    assert model.aft_seq_length == 2
    read = set(inspect.signature(SHRVQVAE_Model.__init__).parameters) - {'self', 'unused_config'}
    assert read <= SHRVQVAE_METHOD.config_keys


@pytest.mark.parametrize('frames, message', [
    (torch.rand(2, 3, 3, 16, 16), 'in_shape'),       # channel mismatch
    (torch.rand(2, 4, 1, 16, 16), 'pre_seq_length'),  # wrong number of input frames
    (torch.rand(2, 3, 1, 20, 16), 'in_shape'),        # wrong frame size
    (torch.rand(3, 1, 16, 16), 'shape'),              # no time axis
])
def test_wrong_input_shape_raises_one_clear_error(frames, message):
    model = SHRVQVAE_Model(**TINY).eval()
    with pytest.raises(ValueError, match=message):
        model(frames)


@pytest.mark.parametrize('change, message', [
    (dict(in_shape=(3, 1, 18, 16)), 'divisible by 4'),
    (dict(in_shape=(3, 16, 16)), r'\(T, C, H, W\)'),
    (dict(decode_order='zigzag'), 'decode_order'),
    (dict(decoding_samples=0), 'decoding_samples'),
    (dict(decoding_samples=4), 'sample_temperature > 0'),
    (dict(decoding_codewords='mean'), 'decoding_codewords'),
    (dict(decoding_codewords='expected'), 'sample_temperature > 0'),
    (dict(decoding_codewords='expected', sample_temperature=1.0, future_order='masked'), "future_order='rollout'"),
])
def test_bad_config_raises_a_clear_error(change, message):
    with pytest.raises(ValueError, match=message):
        SHRVQVAE_Model(**dict(TINY, **change))


def test_prior_builds_only_its_decode_orders_head():
    parallel, raster = (SHRVQVAE_Model(**TINY, decode_order=order) for order in ('parallel', 'raster'))
    assert not any('raster' in name or 'Raster' in type(m).__name__ for name, m in parallel.named_modules())
    assert type(raster.prior.head).__name__ == 'RasterHead'
    trunk_and_tokenizer = count_parameters(parallel) - count_parameters(parallel.prior.head)
    assert trunk_and_tokenizer == count_parameters(raster) - count_parameters(raster.prior.head)


def test_teacher_forced_cost_counts_what_prediction_runs():
    """The stand-in fvcore counts raster decoding on has exactly the FLOPs of the parallel prediction it
    replaces when both are traced on a parallel model (the same layers, once per token)."""
    from openstl_hrvq.model_info import count_flops, dummy_input
    from openstl_hrvq.models.shrvqvae_model import TeacherForcedCost
    model = SHRVQVAE_Model(**TINY)
    sample = dummy_input(model.in_shape, model.pre_seq_length)
    predicted, _ = count_flops(model, sample)
    stand_in, _ = count_flops(TeacherForcedCost(model), sample)
    assert predicted > 0 and abs(stand_in - predicted) <= 1e-6 * predicted
    raster = SHRVQVAE_Model(**dict(TINY, decode_order='raster'))
    assert isinstance(raster.flop_counting_module(), TeacherForcedCost)


def test_prior_local_blocks_add_full_resolution_blocks_to_the_trunk():
    """`prior_local_blocks` reaches the prior: that many gated blocks at full token resolution, their weights
    counted, and the prediction still has OpenSTL's shape."""
    base = SHRVQVAE_Model(**TINY)
    deeper, prediction = predict(dict(TINY, prior_local_blocks=2), batch_size=2)
    assert len(base.prior.trunk.local_blocks) == 0 and len(deeper.prior.trunk.local_blocks) == 2
    assert count_parameters(deeper) - count_parameters(base) == count_parameters(deeper.prior.trunk.local_blocks) > 0
    check_prediction(prediction, (2, 2, 1, 16, 16))
