"""HR-VQVAE frame tokenizer: shapes, encode/decode consistency, errors, learning on real digits."""
import numpy as np
import pytest
import torch

from openstl_hrvq.datasets.embedded_digits import load_embedded_digits
from openstl_hrvq.models import HRVQVAE


def digit_frames(num_frames=16, size=64, digits_per_frame=2, seed=0):
    """Real MNIST digits pasted at random places into ``(num_frames, 1, size, size)`` frames in [0, 1]."""
    images, _ = load_embedded_digits()
    rng = np.random.default_rng(seed)
    frames = np.zeros((num_frames, 1, size, size), dtype=np.float32)
    for frame in frames:
        for digit in rng.choice(len(images), digits_per_frame, replace=False):
            y, x = rng.integers(0, size - 28, 2)
            patch = frame[0, y:y + 28, x:x + 28]
            np.maximum(patch, images[digit] / 255.0, out=patch)
    return torch.from_numpy(frames)


def small_vqvae(**kwargs):
    torch.manual_seed(0)
    config = dict(hidden_channels=16, res_channels=8, num_res_blocks=1, latent_dim=4, num_layers=3, codebook_size=4)
    config.update(kwargs)
    return HRVQVAE(**config)


def test_sequence_and_frame_shapes():
    vq = small_vqvae()
    clip = torch.rand(2, 3, 1, 32, 48)
    out = vq(clip)
    assert out.reconstruction.shape == clip.shape
    assert out.indices.shape == (2, 3, 3, 8, 12) and out.indices.dtype == torch.int64
    assert out.perplexity.shape == (3,) and out.usage.shape == (3,)
    assert out.loss.dim() == 0
    torch.testing.assert_close(out.loss, out.recon_loss + out.vq_loss)
    assert 0.0 <= float(out.reconstruction.detach().min()) and float(out.reconstruction.detach().max()) <= 1.0
    assert vq.encode(clip).shape == (2, 3, 3, 8, 12)
    assert vq.encode(clip[0]).shape == (3, 3, 8, 12)
    assert vq.decode_indices(vq.encode(clip)).shape == clip.shape
    assert vq.decode_latent(torch.randn(5, 4, 8, 8)).shape == (5, 1, 32, 32)


def test_decode_of_encode_is_the_reconstruction():
    vq = small_vqvae()
    clip = digit_frames(4).view(2, 2, 1, 64, 64)
    vq.train()(clip)  # data-dependent codebook init
    vq.eval()
    out = vq(clip)
    assert torch.equal(vq.encode(clip), out.indices)
    torch.testing.assert_close(vq.decode_indices(out.indices), out.reconstruction, atol=1e-5, rtol=1e-5)


def test_chunked_encode_and_decode_equal_one_pass():
    """Without autograd a CPU encodes and decodes in chunks of CPU_CHUNK_FRAMES frames; the indices and frames
    are those of one pass over every frame (the pass autograd runs)."""
    from openstl_hrvq.models.hrvqvae import CPU_CHUNK_FRAMES
    vq = small_vqvae().eval()
    clip = torch.rand(1, 2 * CPU_CHUNK_FRAMES + 3, 1, 16, 16)
    with torch.no_grad():
        vq(clip[0, :8])                              # the quantizer's data-dependent start: varied codes
    with torch.enable_grad():
        indices, frames = vq.encode(clip), vq.decode_indices(vq.encode(clip))
    with torch.no_grad():
        chunked = vq.encode(clip)
        assert torch.equal(chunked, indices) and len(chunked.unique()) > 1
        assert torch.equal(vq.decode_indices(chunked), frames.detach())


def test_encode_is_a_pure_lookup_in_training_mode():
    vq = small_vqvae().train()
    frames = digit_frames(4)
    vq(frames)
    before = [book.detach().clone() for book in vq.quantizer.codebooks]
    vq.encode(frames)
    assert all(torch.equal(book.detach(), old) for book, old in zip(vq.quantizer.codebooks, before))


@pytest.mark.parametrize('frames, message', [
    (torch.rand(2, 3, 32, 32), 'channels'),
    (torch.rand(2, 1, 30, 32), 'divisible by 4'),
    (torch.rand(32, 32), 'shape'),
])
def test_wrong_frames_raise_a_clear_error(frames, message):
    with pytest.raises(ValueError, match=message):
        small_vqvae()(frames)


def test_decoder_gradient_survives_out_of_range_outputs():
    # A pixel the decoder pushed far below 0 that should be bright still gets a gradient (a saturated
    # sigmoid would give ~0 and leave the model at blank frames).
    vq = small_vqvae()
    with torch.no_grad():
        vq.decoder.net[-1].bias.fill_(-10.0)
    latent = torch.randn(1, 4, 4, 4)
    frames = vq.decode_latent(latent)
    assert float(frames.max()) == 0.0
    ((frames - 1.0) ** 2).mean().backward()
    assert vq.decoder.net[-1].bias.grad.abs().item() > 0.5


def test_frames_outside_the_value_range_are_refused_never_clamped():
    z_scored = torch.randn(2, 1, 16, 16) * 2
    with pytest.raises(ValueError, match=r'values in \[-\d.*\], outside the tokenizer.s value_range \[0, 1\].*'
                                         r'vq_value_range=None'):
        small_vqvae().check_range(z_scored)
    with pytest.raises(ValueError, match='outside'):
        small_vqvae(value_range=(-1.0, 1.0)).check_range(z_scored)
    small_vqvae(value_range=(-20.0, 20.0)).check_range(z_scored)
    small_vqvae().check_range(torch.rand(2, 3, 1, 4, 4))
    unbounded = small_vqvae(value_range=None)
    out = unbounded(z_scored)
    latent = torch.randn(3, 4, 4, 4)
    assert torch.equal(unbounded.decode_latent(latent), unbounded.decoder(latent))     # no clamp at all
    assert out.reconstruction.shape == z_scored.shape
    ranged = small_vqvae(value_range=(-3.0, 5.0))
    decoded = ranged.decode_latent(latent * 100)
    assert float(decoded.min()) >= -3.0 and float(decoded.max()) <= 5.0 and float(decoded.max()) == 5.0
    unit = small_vqvae()                    # the default keeps the [0, 1] clamp, bit for bit
    assert torch.equal(unit.decode_latent(latent), unit.decoder(latent).clamp(0.0, 1.0))


def test_wrong_indices_raise_a_clear_error():
    with pytest.raises(ValueError, match='shape'):
        small_vqvae().decode_indices(torch.zeros(2, 2, 8, 8, dtype=torch.long))


def test_learns_to_reconstruct_real_digits():
    frames = digit_frames(16)
    vq = small_vqvae(hidden_channels=32, res_channels=16)
    optimizer = torch.optim.Adam(vq.parameters(), lr=3e-3)

    def recon_mse():
        vq.eval()
        with torch.no_grad():
            error = float(((vq(frames).reconstruction - frames) ** 2).mean())
        vq.train()
        return error

    start = recon_mse()
    for _ in range(150):
        out = vq(frames)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    end = recon_mse()
    all_black = float((frames ** 2).mean())  # the error of a decoder that draws no digit at all
    assert end < 0.4 * start
    assert end < 0.4 * all_black, f'reconstruction MSE {end:.4f} hardly beats a blank frame ({all_black:.4f})'
    assert float(out.usage[0]) > 0.5
