"""Tests of the ST-PixelCNN prior: causality of both decoding orders, cached decoding, learning, shapes."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from openstl_hrvq.models import STPixelCNN
from openstl_hrvq.models.st_pixelcnn import DECODE_ORDERS
from openstl_hrvq.modules.attention import CausalSpatioTemporalAttention

ORDERS = DECODE_ORDERS


@pytest.fixture(autouse=True)
def single_thread():
    """These models are tiny: one thread avoids thread start-up costs that dominate on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_prior(num_layers=3, codebook_size=4, **kwargs):
    """A small double-precision prior: exact comparisons, fast on CPU."""
    torch.manual_seed(0)
    config = dict(hidden_channels=16, num_blocks=2, num_heads=2, max_frames=8)
    config.update(kwargs)
    return STPixelCNN(num_layers, codebook_size, **config).double()


def precedes(order, earlier, later):
    """Whether token `earlier` = (t, layer, row, col) may influence token `later` in `order`."""
    (t0, i0, r0, c0), (t1, i1, r1, c1) = earlier, later
    if order == 'raster':
        return (t0, r0, c0, i0) < (t1, r1, c1, i1)
    return (t0, i0) < (t1, i1)


def successors(order, token, shape):
    """Later tokens that `token` must influence: its finer layer at the same position, else the tokens right
    of and below it (raster: both lie in any PixelCNN's receptive field), else the same position one frame on."""
    frames, layers, height, width = shape
    t, i, r, c = token
    if i + 1 < layers:
        return [(t, i + 1, r, c)]
    if order == 'raster' and (c + 1 < width or r + 1 < height):
        return [(t, 0, r, c + 1)] * (c + 1 < width) + [(t, 0, r + 1, c)] * (r + 1 < height)
    return [(t + 1, 0, r, c)] if t + 1 < frames else []


#: Architecture options that add paths through which a token could leak: full-resolution trunk blocks.
DEEPER = dict(local_blocks=2)


@pytest.mark.parametrize('order', ORDERS)
@pytest.mark.parametrize('options', [{}, DEEPER], ids=['default', 'local-blocks'])
def test_causality_by_perturbation(order, options):
    """Perturbing any token changes no logit of a token at or before it in `order`, but changes later ones."""
    prior = tiny_prior(decode_order=order, **options)
    shape = (3, 3, 5, 4)                      # odd height exercises the trunk's padding
    indices = torch.randint(0, 4, (1, *shape))
    with torch.no_grad():
        base = prior(indices)
        for token in itertools.product(*(range(n) for n in shape)):
            perturbed = indices.clone()
            perturbed[(0, *token)] = (perturbed[(0, *token)] + 1) % 4
            changed = (prior(perturbed) - base).abs().amax(dim=3)[0] > 1e-9     # (T, L, h, w)
            for other in map(tuple, changed.nonzero().tolist()):
                assert precedes(order, token, other), f"{order}: token {token} leaks into {other}"
            for successor in successors(order, token, shape):
                assert changed[successor], f"{order}: token {token} does not reach {successor}"


def naive_predict(prior, context, num_future):
    """Argmax decoding that recomputes the full teacher-forced forward for every single token."""
    batch, _, layers, height, width = context.shape
    sequence = torch.cat([context, context.new_zeros(batch, num_future, layers, height, width)], dim=1)
    start = context.shape[1]
    for t in range(start, start + num_future):
        if prior.decode_order == 'raster':
            steps = [(i, r, c) for r in range(height) for c in range(width) for i in range(layers)]
        else:
            steps = [(i, None, None) for i in range(layers)]
        for i, r, c in steps:
            logits = prior(sequence[:, :t + 1])[:, t, i]                  # (B, M, h, w)
            choice = logits.argmax(dim=1)
            if r is None:
                sequence[:, t, i] = choice
            else:
                sequence[:, t, i, r, c] = choice[:, r, c]
    return sequence[:, start:]


@pytest.mark.parametrize('order', ORDERS)
@pytest.mark.parametrize('options', [{}, DEEPER], ids=['default', 'local-blocks'])
def test_cached_predict_equals_naive_predict(order, options):
    """predict() with its trunk state and receptive-field crops decodes exactly what full recomputation does."""
    prior = tiny_prior(num_layers=2, decode_order=order, **options)
    context = torch.randint(0, 4, (2, 3, 2, 4, 5))
    with torch.no_grad():
        expected = naive_predict(prior, context, 2)
    assert torch.equal(prior.predict(context, 2), expected)


def test_incremental_raster_head_equals_whole_frame_head():
    """Row-by-row, position-by-position features of the raster head equal its whole-frame features."""
    head = tiny_prior(kernel_size=5, decode_order='raster').head
    tokens, context = torch.randn(2, 8, 6, 7, dtype=torch.double), torch.randn(2, 8, 6, 7, dtype=torch.double)
    with torch.no_grad():
        expected = head(tokens, context)
        conditioning = head.conditioning(context)
        for row in range(6):
            state = head.start_row(tokens, conditioning, row)
            for col in range(7):
                torch.testing.assert_close(head.feature_at(tokens, conditioning, state, row, col),
                                           expected[:, :, row, col])


@pytest.mark.parametrize('order', ORDERS)
def test_prior_learns_and_reproduces_a_fixed_sequence(order):
    """The prior drives the CE of a tiny fixed code sequence near zero and then predicts it exactly."""
    torch.manual_seed(1)
    codes = torch.randint(0, 4, (2, 4, 3, 4, 4))
    prior = STPixelCNN(3, 4, hidden_channels=32, num_blocks=2, num_heads=2, max_frames=8, decode_order=order)
    optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
    for _ in range(400):
        loss = prior.loss(codes, first_frame=2)
        if loss.item() < 0.02:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert prior.loss(codes, first_frame=2).item() < 0.05
    assert torch.equal(prior.predict(codes[:, :2], 2), codes[:, 2:])


@pytest.mark.parametrize('order', ORDERS)
def test_sampling_varies_and_stays_in_range(order):
    prior = STPixelCNN(2, 8, hidden_channels=16, num_blocks=2, num_heads=2, max_frames=8, decode_order=order)
    context = torch.randint(0, 8, (2, 2, 2, 4, 4))
    torch.manual_seed(0)
    first = prior.predict(context, 2, temperature=1.0)
    second = prior.predict(context, 2, temperature=1.0)
    assert first.dtype == torch.int64 and first.shape == (2, 2, 2, 4, 4)
    assert 0 <= int(first.min()) and int(first.max()) < 8
    assert not torch.equal(first, second)
    assert torch.equal(prior.predict(context, 2), prior.predict(context, 2))


@pytest.mark.parametrize('order', ORDERS)
@pytest.mark.parametrize('temperature', [0.0, 1.0], ids=['argmax', 'sampled'])
def test_rollouts_sharing_a_context_equal_rollouts_of_the_repeated_context(order, temperature):
    """predict(samples=N) runs the context's trunk pass once per clip and shares it; it decodes exactly what
    predict of every clip repeated N times decodes, the same random draws included (same seed)."""
    prior = tiny_prior(decode_order=order, local_blocks=1)
    context = torch.randint(0, 4, (2, 3, 3, 4, 5))
    with torch.no_grad():
        torch.manual_seed(3)
        shared = prior.predict(context, 3, temperature=temperature, samples=4)
        torch.manual_seed(3)
        repeated = prior.predict(context.repeat_interleave(4, dim=0), 3, temperature=temperature)
    assert shared.shape == (8, 3, 3, 4, 5)
    assert torch.equal(shared, repeated)
    if temperature > 0:
        assert not torch.equal(shared[0], shared[1])          # the copies are different rollouts


@pytest.mark.parametrize('order', ORDERS)
def test_predicted_distributions_are_the_teacher_forced_ones_of_the_drawn_rollout(order):
    """predict(probabilities=True) returns, for every drawn token, softmax(logits / T) given the tokens decoded
    before it. A teacher-forced pass over the context followed by the drawn rollout computes those logits
    independently (whole clip at once, no caches), so the two must agree; the draw itself is unchanged."""
    prior = tiny_prior(decode_order=order, local_blocks=1)
    context = torch.randint(0, 4, (2, 3, 3, 4, 5))
    temperature = 0.7
    with torch.no_grad():
        torch.manual_seed(5)
        future, distributions = prior.predict(context, 3, temperature=temperature, samples=2, probabilities=True)
        torch.manual_seed(5)
        assert torch.equal(prior.predict(context, 3, temperature=temperature, samples=2), future)
        clip = torch.cat([context.repeat_interleave(2, dim=0), future], dim=1)
        logits = prior(clip, first_frame=3)                                    # (B, T', L, M, h, w)
    assert distributions.shape == (4, 3, 3, 4, 4, 5) and distributions.dtype == torch.float32
    torch.testing.assert_close(distributions.double(), torch.softmax(logits / temperature, dim=3),
                               atol=1e-6, rtol=1e-5)


def test_predicted_distributions_need_a_sampled_rollout():
    prior = tiny_prior()
    context = torch.randint(0, 4, (1, 2, 3, 4, 4))
    with pytest.raises(ValueError, match='temperature > 0'):
        prior.predict(context, 2, temperature=0.0, probabilities=True)
    masked = tiny_prior(future_order='masked')
    with pytest.raises(ValueError, match="future_order='rollout'"):
        masked.predict(context, 2, temperature=1.0, probabilities=True)


@pytest.mark.parametrize('layers, codebook, height, frames_in, frames_out', [
    (3, 4, 16, 10, 10),       # Moving MNIST
    (3, 8, 32, 10, 20),       # KTH
    (6, 2, 8, 2, 2),          # deep Moving MNIST tree
    (9, 2, 8, 2, 2),          # deep KTH tree
    (1, 512, 8, 2, 2),        # one flat layer
])
def test_shapes_and_dtypes(layers, codebook, height, frames_in, frames_out):
    indices = torch.randint(0, codebook, (1, frames_in + frames_out, layers, height, height))
    for order in ORDERS:
        prior = STPixelCNN(layers, codebook, hidden_channels=16, num_blocks=2, num_heads=2, decode_order=order)
        logits = prior(indices)
        assert logits.shape == (1, frames_in + frames_out, layers, codebook, height, height)
        assert logits.dtype == torch.float32
        future_logits = prior(indices, first_frame=frames_in)
        assert torch.allclose(future_logits, logits[:, frames_in:], atol=1e-5)
        loss = prior.loss(indices, frames_in)
        assert loss.dim() == 0 and torch.isfinite(loss)
        crop = indices[:, :frames_in] if order == 'parallel' else indices[:, :frames_in, :, :8, :8]
        future = prior.predict(crop, frames_out if order == 'parallel' else 1)
        assert future.shape == (1, frames_out if order == 'parallel' else 1, layers, *crop.shape[-2:])
        assert future.dtype == torch.int64


@pytest.mark.parametrize('order', ORDERS)
def test_resampled_history_holds_the_priors_own_one_step_predictions(order):
    """p = 1 replaces every frame after the first by what the prior decodes from the true frames before it
    (parallel: exactly predict()'s decoding; raster: the argmax of the teacher-forced logits); p = 0 keeps all."""
    prior = tiny_prior(num_layers=2, decode_order=order)
    indices = torch.randint(0, 4, (2, 4, 2, 4, 5))
    assert torch.equal(prior.resample_history(indices, 0.0), indices)
    history = prior.resample_history(indices, 1.0, temperature=0.0)
    assert torch.equal(history[:, 0], indices[:, 0])
    with torch.no_grad():
        for t in range(1, 4):
            if order == 'parallel':
                expected = prior.predict(indices[:, :t], 1)[:, 0]
            else:
                expected = prior(indices[:, :t + 1])[:, t].argmax(dim=2)
            assert torch.equal(history[:, t], expected)
    assert not torch.equal(history, indices)


def test_resampling_keeps_the_input_frames_exact_when_asked():
    """keep_frames = k (prior_resample_frames = 'future') never swaps frames < k, and swaps frames >= k
    exactly as keep_frames = 1 does (one round reads the true frames, so the predictions are the same)."""
    prior = tiny_prior(num_layers=2)
    indices = torch.randint(0, 4, (2, 5, 2, 4, 5))
    every = prior.resample_history(indices, 1.0, temperature=0.0)
    future = prior.resample_history(indices, 1.0, temperature=0.0, keep_frames=3)
    assert torch.equal(future[:, :3], indices[:, :3])
    assert torch.equal(future[:, 3:], every[:, 3:])
    assert not torch.equal(every[:, 1:3], indices[:, 1:3])
    assert torch.equal(prior.resample_history(indices, 1.0, keep_frames=5), indices)


def test_resampling_rounds_reach_the_full_rollout():
    """T - 1 rounds at probability 1 turn the history into the prior's own argmax rollout from frame 0."""
    prior = tiny_prior(num_layers=2)
    indices = torch.randint(0, 4, (2, 4, 2, 4, 5))
    rollout = prior.predict(indices[:, :1], 3)
    assert torch.equal(prior.resample_history(indices, 1.0, temperature=0.0, rounds=3)[:, 1:], rollout)
    assert not torch.equal(prior.resample_history(indices, 1.0, temperature=0.0, rounds=1)[:, 1:], rollout)


def test_history_feeds_the_past_and_indices_the_current_frame():
    """With a history, the logits of frame t read frames < t from the history only, and frame t's own
    coarser layers from indices."""
    prior = tiny_prior(num_layers=2)
    indices = torch.randint(0, 4, (1, 3, 2, 4, 4))
    history = torch.randint(0, 4, (1, 3, 2, 4, 4))
    with torch.no_grad():
        base = prior(indices, first_frame=1, history=history)
        changed_past = indices.clone()
        changed_past[:, 0] = (changed_past[:, 0] + 1) % 4
        assert torch.equal(prior(changed_past, first_frame=1, history=history), base)
        changed_history = history.clone()
        changed_history[:, 0] = (changed_history[:, 0] + 1) % 4
        assert not torch.equal(prior(indices, first_frame=1, history=changed_history), base)
        assert torch.equal(prior(indices, first_frame=1, history=indices), prior(indices, first_frame=1))


def test_layer_weights_select_the_layers_the_loss_scores():
    prior = tiny_prior()
    indices = torch.randint(0, 4, (2, 3, 3, 4, 4))
    with torch.no_grad():
        logits = prior(indices, first_frame=1)
        coarse_only = F.cross_entropy(logits[:, :, 0].movedim(2, 1), indices[:, 1:, 0])
        torch.testing.assert_close(prior.loss(indices, 1, layer_weights=(1.0, 0.0, 0.0)), coarse_only)
        torch.testing.assert_close(prior.loss(indices, 1, layer_weights=(2.0, 2.0, 2.0)), prior.loss(indices, 1))
    with pytest.raises(ValueError, match='one weight per layer'):
        prior.loss(indices, 1, layer_weights=(1.0, 1.0))


def test_default_moving_mnist_prior_is_small():
    prior = STPixelCNN(3, 4)
    assert sum(p.numel() for p in prior.parameters()) <= 600_000


@pytest.mark.parametrize('bad, match', [
    (torch.zeros(1, 2, 3, 4), 'shape'),
    (torch.zeros(1, 2, 2, 4, 4, dtype=torch.long), 'shape'),
    (torch.zeros(1, 2, 3, 4, 4), 'dtype'),
    (torch.full((1, 2, 3, 4, 4), 4), r'\[0, 4\)'),
    (torch.full((1, 2, 3, 4, 4), -1), r'\[0, 4\)'),
    (torch.zeros(1, 40, 3, 4, 4, dtype=torch.long), 'max_frames'),
])
def test_invalid_indices_raise_one_clear_error(bad, match):
    prior = STPixelCNN(3, 4, hidden_channels=16, num_blocks=1, num_heads=2)
    with pytest.raises(ValueError, match=match):
        prior(bad)
    with pytest.raises(ValueError, match=match):
        prior.predict(bad, 1)


def test_invalid_order_and_lengths_raise():
    prior = STPixelCNN(3, 4, hidden_channels=16, num_blocks=1, num_heads=2, max_frames=8)
    indices = torch.zeros(1, 4, 3, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match='decode_order'):
        STPixelCNN(3, 4, decode_order='zigzag')
    with pytest.raises(ValueError, match='first_frame'):
        prior.loss(indices, 4)
    with pytest.raises(ValueError, match='history'):
        prior.loss(indices, 1, history=indices[:, :3])
    with pytest.raises(ValueError, match='max_frames'):
        prior.predict(indices, 5)


def test_chunked_attention_equals_one_shot_attention():
    """Processing query frames in chunks (long clips) and one frame at a time (decoding) changes nothing."""
    torch.manual_seed(0)
    attention = CausalSpatioTemporalAttention(8, num_heads=2, max_frames=6).double()
    with torch.no_grad():
        attention.time_bias.normal_()
    x = torch.randn(2, 8, 6, 5, 4, dtype=torch.double)
    with torch.no_grad():
        whole, _ = attention(x)
        attention.max_scores = 1
        chunked, _ = attention(x)
        first, cache = attention(x[:, :, :3])
        rest, _ = attention(x[:, :, 3:], cache)
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(torch.cat([first, rest], dim=2), whole)
