"""HR-VQVAE: the frame tokenizer of S-HR-VQVAE (conv encoder, tree quantizer, conv decoder)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

from ..modules.conv_blocks import DOWNSAMPLE_FACTOR, Decoder, Encoder
from ..modules.hierarchical_quantizer import HierarchicalResidualQuantizer

__all__ = ['HRVQVAE', 'HRVQVAEOutput']

#: How far outside ``value_range`` a value may lie (float rounding of resized or normalised frames).
RANGE_TOLERANCE = 1e-5

#: Frames per chunk when the tokenizer encodes or decodes on a CPU without autograd (see ``HRVQVAE._in_chunks``).
CPU_CHUNK_FRAMES = 64


@dataclass
class HRVQVAEOutput:
    """Result of :meth:`HRVQVAE.forward`; leading dims ``...`` are ``(B, T)`` or ``(N,)`` like the input.

    Attributes:
        reconstruction: ``(..., C, H, W)`` in [0, 1].
        loss: scalar, ``recon_loss + vq_loss`` (paper eq. 4).
        recon_loss: scalar, mean squared error of the reconstruction.
        vq_loss: scalar, the quantizer's commitment / codebook terms (eq. 4-5).
        indices: ``(..., L, h, w)`` int64 local indices.
        perplexity: ``(L,)``; usage: ``(L,)`` fraction of each layer's codewords used.
    """

    reconstruction: Tensor
    loss: Tensor
    recon_loss: Tensor
    vq_loss: Tensor
    indices: Tensor
    perplexity: Tensor
    usage: Tensor


class HRVQVAE(nn.Module):
    """Encoder -> :class:`HierarchicalResidualQuantizer` -> decoder, on single frames.

    Sequences ``(B, T, C, H, W)`` are handled by folding time into the batch; single frames
    ``(N, C, H, W)`` are accepted as they are. H and W must be divisible by 4.

    The decoder's output is clamped to ``value_range`` (default [0, 1], the range of image datasets); frames
    to reproduce outside it are refused by :meth:`check_range` with one error naming the range found, never
    silently clamped. ``value_range=None`` leaves the output unclamped, for data with no fixed range
    (WeatherBench's z-scored variables).

    Args:
        in_channels: frame channels C.
        hidden_channels: encoder / decoder width at 1/4 resolution (half of it at 1/2 resolution).
        res_channels: bottleneck width of the residual blocks.
        num_res_blocks: residual blocks in the encoder and in the decoder.
        latent_dim: D, channels of the quantized latent.
        num_layers, codebook_size, beta, layer_betas, ema, decay, dead_code_threshold: of the quantizer.
        value_range: ``(low, high)`` of the frames, or None for unbounded data.
    """

    def __init__(self, in_channels: int = 1, hidden_channels: int = 48, res_channels: int = 24,
                 num_res_blocks: int = 2, latent_dim: int = 4, num_layers: int = 3, codebook_size: int = 4,
                 beta: float = 0.25, layer_betas: Optional[Sequence[float]] = None, ema: bool = True,
                 decay: float = 0.99, dead_code_threshold: float = 1.0,
                 value_range: Optional[Sequence[float]] = (0.0, 1.0)):
        super().__init__()
        self.in_channels = in_channels
        self.value_range = None if value_range is None else (float(value_range[0]), float(value_range[1]))
        self.latent_dim = latent_dim
        self.encoder = Encoder(in_channels, hidden_channels, res_channels, num_res_blocks, latent_dim)
        self.quantizer = HierarchicalResidualQuantizer(
            num_layers, codebook_size, latent_dim, beta=beta, layer_betas=layer_betas, ema=ema, decay=decay,
            dead_code_threshold=dead_code_threshold)
        self.decoder = Decoder(in_channels, hidden_channels, res_channels, num_res_blocks, latent_dim)

    @property
    def num_layers(self) -> int:
        return self.quantizer.num_layers

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def _fold_frames(self, frames: Tensor) -> tuple[Tensor, tuple]:
        """``(B, T, C, H, W)`` or ``(N, C, H, W)`` -> ``(B*T or N, C, H, W)`` and the leading dims."""
        if frames.dim() not in (4, 5):
            raise ValueError(
                f'Expected frames of shape (B, T, C, H, W) or (N, C, H, W), got {tuple(frames.shape)}.')
        C, H, W = frames.shape[-3:]
        if C != self.in_channels:
            raise ValueError(
                f'Frames have {C} channels but the HR-VQVAE was built for {self.in_channels}; '
                'set in_channels (vq config) to match the data.')
        if H % DOWNSAMPLE_FACTOR or W % DOWNSAMPLE_FACTOR:
            raise ValueError(
                f'Frame size {H}x{W} is not divisible by {DOWNSAMPLE_FACTOR}; resize or pad the frames.')
        return frames.reshape(-1, C, H, W), tuple(frames.shape[:-3])

    def check_range(self, frames: Tensor) -> None:
        """Refuse target frames (any shape) outside ``value_range``: the decoder could not reproduce them, only
        clamp them. Inputs may leave the range (a robustness test's noise): the encoder reads them as they are."""
        if self.value_range is None:
            return
        low, high = self.value_range
        found_low, found_high = (float(value) for value in torch.aminmax(frames.detach()))
        if found_low < low - RANGE_TOLERANCE or found_high > high + RANGE_TOLERANCE:
            raise ConfigError(
                f'The frames hold values in [{found_low:.4g}, {found_high:.4g}], outside the tokenizer\'s '
                f'value_range [{low:g}, {high:g}] that its outputs are clamped to: set vq_value_range=None in the '
                f'config (no clamp, for data with no fixed range such as z-scored WeatherBench) or a range that '
                f'covers them.')

    def _fold_indices(self, indices: Tensor) -> tuple[Tensor, tuple]:
        """``(B, T, L, h, w)`` or ``(N, L, h, w)`` -> ``(B*T or N, L, h, w)`` and the leading dims."""
        if indices.dim() not in (4, 5) or indices.shape[-3] != self.num_layers:
            raise ValueError(
                f'Expected indices of shape (B, T, {self.num_layers}, h, w) or (N, {self.num_layers}, h, w), '
                f'got {tuple(indices.shape)}.')
        return indices.reshape(-1, *indices.shape[-3:]), tuple(indices.shape[:-3])

    @staticmethod
    def _in_chunks(function, flat: Tensor, *more: Tensor) -> Tensor:
        """``function`` of frames or indices ``(N, ...)`` (and of further tensors ``(N, ...)`` beside them, split
        alike), run on chunks of ``CPU_CHUNK_FRAMES`` along N on a CPU when no graph is recorded.

        Every frame is encoded and decoded on its own, so chunks give the same result as one call; on a CPU a
        chunk's activations stay in cache instead of streaming tensors of tens of MB through memory (encoding
        320 frames of 64x64: 1.5x faster, decoding 1,280: 1.9x). On a GPU, or under autograd, it is one call.
        """
        if flat.device.type != 'cpu' or torch.is_grad_enabled() or flat.shape[0] <= CPU_CHUNK_FRAMES:
            return function(flat, *more)
        chunks = zip(*(tensor.split(CPU_CHUNK_FRAMES) for tensor in (flat, *more)))
        return torch.cat([function(*chunk) for chunk in chunks])

    def encode(self, frames: Tensor) -> Tensor:
        """Frames ``(B, T, C, H, W)`` -> indices ``(B, T, L, H/4, W/4)`` int64 (or ``(N, ...)`` -> ``(N, ...)``).

        A pure lookup: no codebook statistics are updated, whatever the training mode.
        """
        flat, lead = self._fold_frames(frames)
        indices = self._in_chunks(lambda chunk: self.quantizer.encode(self.encoder(chunk)), flat)
        return indices.reshape(*lead, *indices.shape[1:])

    def decode_latent(self, latent: Tensor) -> Tensor:
        """Quantized latent e_C ``(N, D, h, w)`` -> frames ``(N, C, 4h, 4w)`` in ``value_range``.

        The decoder's output is clamped to ``value_range`` ([0, 1] by default) with a straight-through
        gradient. A sigmoid output under the MSE loss saturates: on sparse frames (Moving MNIST is ~80 %
        background) the decoder first learns blank frames, the sigmoid's slope vanishes at the digits' pixels
        and training stays at the blank-frame error. The straight-through clamp keeps the frames in their range
        (what the metrics score) while the gradient of a wrong pixel never vanishes. Without a range
        (``value_range=None``) the output is the decoder's, unclamped.
        """
        frames = self.decoder(latent)
        if self.value_range is None:
            return frames
        low, high = self.value_range
        return frames + (frames.clamp(low, high) - frames).detach()

    def decode_indices(self, indices: Tensor) -> Tensor:
        """Indices ``(B, T, L, h, w)`` -> frames ``(B, T, C, 4h, 4w)`` in [0, 1] (or ``(N, ...)``)."""
        flat, lead = self._fold_indices(indices)
        frames = self._in_chunks(lambda chunk: self.decode_latent(self.quantizer.decode_indices(chunk)), flat)
        return frames.reshape(*lead, *frames.shape[1:])

    def decode_weighted(self, indices: Tensor, weights: Tensor) -> Tensor:
        """Indices ``(B, T, L, h, w)`` and child weights ``(B, T, L, M, h, w)`` -> frames ``(B, T, C, 4h, 4w)``.

        See :meth:`HierarchicalResidualQuantizer.decode_weighted`; one-hot weights give :meth:`decode_indices`.
        """
        flat, lead = self._fold_indices(indices)
        frames = self._in_chunks(lambda chunk, chunk_weights: self.decode_latent(
            self.quantizer.decode_weighted(chunk, chunk_weights)), flat, weights.reshape(-1, *weights.shape[-4:]))
        return frames.reshape(*lead, *frames.shape[1:])

    def forward(self, frames: Tensor) -> HRVQVAEOutput:
        """Reconstruct ``frames`` ``(B, T, C, H, W)`` or ``(N, C, H, W)`` and compute the eq. 4 loss."""
        flat, lead = self._fold_frames(frames)
        quantized = self.quantizer(self.encoder(flat))
        reconstruction = self.decode_latent(quantized.quantized)
        recon_loss = F.mse_loss(reconstruction, flat)
        return HRVQVAEOutput(
            reconstruction=reconstruction.reshape(frames.shape),
            loss=recon_loss + quantized.loss,
            recon_loss=recon_loss,
            vq_loss=quantized.loss,
            indices=quantized.indices.reshape(*lead, *quantized.indices.shape[1:]),
            perplexity=quantized.perplexity,
            usage=quantized.usage,
        )
