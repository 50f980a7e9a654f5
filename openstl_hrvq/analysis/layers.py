"""What each layer of the codebook tree adds (S-HR-VQVAE paper Fig. 4/5).

With the quantized latent ``e_C = e^1 + ... + e^L`` (eq. 4), decoding the partial sums
``S_i = e^1 + ... + e^i`` shows the frame as the first ``i`` layers describe it, coarse to fine. The
contribution map of layer ``i`` is what decoding gains from it, ``D(S_i) - D(S_{i-1})`` with
``S_0 = 0`` (so layer 1's map is measured from the decoder's output for an all-zero latent).
"""
from __future__ import annotations

import numpy as np
import torch

from openstl_hrvq.metrics import metric
from openstl_hrvq.models import HRVQVAE
from openstl_hrvq.modules.conv_blocks import DOWNSAMPLE_FACTOR
from openstl_hrvq.visualization import labelled_grid


@torch.no_grad()
def layer_reconstructions(vqvae: HRVQVAE, frames: torch.Tensor) -> torch.Tensor:
    """Decode the first 1..L layers: frames ``(N, C, H, W)`` -> ``(N, L, C, H, W)`` in [0, 1]."""
    indices = vqvae.encode(frames)                         # (N, L, h, w)
    sums = vqvae.quantizer.partial_sums(indices)           # (N, L, D, h, w)
    n, num_layers = sums.shape[:2]
    decoded = vqvae.decode_latent(sums.flatten(0, 1))      # (N*L, C, H, W)
    return decoded.reshape(n, num_layers, *decoded.shape[1:])


@torch.no_grad()
def layer_contributions(vqvae: HRVQVAE, reconstructions: torch.Tensor) -> torch.Tensor:
    """``D(S_i) - D(S_{i-1})`` for every layer: reconstructions ``(N, L, C, H, W)`` -> signed ``(N, L, C, H, W)``."""
    height, width = reconstructions.shape[-2:]
    latent_shape = (reconstructions.shape[0], vqvae.latent_dim, height // DOWNSAMPLE_FACTOR, width // DOWNSAMPLE_FACTOR)
    empty = vqvae.decode_latent(reconstructions.new_zeros(latent_shape))  # D(S_0), S_0 = 0
    previous = torch.cat([empty.unsqueeze(1), reconstructions[:, :-1]], dim=1)
    return reconstructions - previous


def layer_errors(frames: np.ndarray, reconstructions: np.ndarray) -> list[dict]:
    """Reconstruction quality from the first i layers.

    Args:
        frames: ``(N, C, H, W)`` originals; reconstructions: ``(N, L, C, H, W)``.

    Returns:
        One dict per i: ``layers`` (= i), ``mse`` (per-frame sum, OpenSTL's definition), ``ssim``, ``psnr``.
    """
    rows = []
    for layer in range(reconstructions.shape[1]):
        scores, _ = metric(reconstructions[:, layer][:, None], frames[:, None], metrics=['mse', 'ssim', 'psnr'],
                           return_log=False)
        rows.append({'layers': layer + 1, **scores})
    return rows


def layer_figure(frames: np.ndarray, reconstructions: np.ndarray, contributions: np.ndarray, scale: int = 2):
    """Rows: the frames, their reconstructions from the first 1..L layers, and each layer's contribution.

    Contributions are shown as magnitudes, each layer scaled by its own maximum over the shown frames so
    that the finest layers' small corrections stay visible.

    Args:
        frames: ``(N, C, H, W)``; reconstructions, contributions: ``(N, L, C, H, W)``.
    """
    num_layers = reconstructions.shape[1]
    rows = [('input', list(frames))]
    rows += [(f'layers 1-{i + 1}' if i else 'layer 1', list(reconstructions[:, i])) for i in range(num_layers)]
    for i in range(num_layers):
        magnitude = np.abs(contributions[:, i])
        rows.append((f'layer {i + 1} adds', list(magnitude / max(float(magnitude.max()), 1e-8))))
    return labelled_grid(rows, scale=scale, title='reconstruction from the first layers, and what each layer adds')
