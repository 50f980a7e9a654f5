"""SHRVQVAE_Model: OpenSTL's shape contract for Moving-MNIST and KTH configs, size, config handling, errors."""
import inspect

import pytest
import torch

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
    frames = torch.rand(1, 3, 1, 16, 16)
    with torch.no_grad():
        context = model.vqvae.encode(frames)
        expected = model.vqvae.decode_indices(model.prior.predict(context, 2, order='raster'))
        torch.testing.assert_close(model(frames), expected)


def test_unknown_config_keys_are_ignored_and_model_keys_are_complete():
    model = SHRVQVAE_Model(**TINY, method='SHRVQVAE', lr=3e-4, epoch=200, batch_size=16)
    assert model.aft_seq_length == 2
    read = set(inspect.signature(SHRVQVAE_Model.__init__).parameters) - {'self', 'unused_config'}
    assert set(SHRVQVAE_Model.MODEL_KEYS) == read


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
])
def test_bad_config_raises_a_clear_error(change, message):
    with pytest.raises(ValueError, match=message):
        SHRVQVAE_Model(**dict(TINY, **change))
