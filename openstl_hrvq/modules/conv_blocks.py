"""Convolutional encoder / decoder of the HR-VQVAE frame tokenizer (stride 4 each way)."""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ['ResidualBlock', 'Encoder', 'Decoder', 'DOWNSAMPLE_FACTOR']

DOWNSAMPLE_FACTOR = 4  # two stride-2 convolutions: 64x64 -> 16x16, 128x128 -> 32x32


class ResidualBlock(nn.Module):
    """``x + conv1x1(relu(conv3x3(relu(x))))``, a bottlenecked pre-activation residual block.

    Args:
        channels: input and output width; res_channels: bottleneck width.
    """

    def __init__(self, channels: int, res_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, res_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(res_channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, channels, H, W)`` -> same shape."""
        return x + self.body(x)


def _residual_stack(channels: int, res_channels: int, num_blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(channels, res_channels) for _ in range(num_blocks)])


class Encoder(nn.Module):
    """Frames to latents at 1/4 resolution.

    Two stride-2 4x4 convolutions (widths ``hidden_channels // 2`` then ``hidden_channels``), a 3x3
    convolution, ``num_res_blocks`` residual blocks and a 1x1 projection to ``latent_dim`` channels.
    """

    def __init__(self, in_channels: int, hidden_channels: int, res_channels: int, num_res_blocks: int,
                 latent_dim: int):
        super().__init__()
        half = max(hidden_channels // 2, 1)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, half, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(half, hidden_channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            _residual_stack(hidden_channels, res_channels, num_res_blocks),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, latent_dim, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` -> ``(N, latent_dim, H/4, W/4)``."""
        return self.net(x)


class Decoder(nn.Module):
    """Latents back to frames, mirroring :class:`Encoder`.

    The output is linear (unbounded); :class:`~openstl_hrvq.models.HRVQVAE` maps it to [0, 1] with a
    straight-through clamp (see ``HRVQVAE.decode_latent`` for why not a sigmoid).
    """

    def __init__(self, out_channels: int, hidden_channels: int, res_channels: int, num_res_blocks: int,
                 latent_dim: int):
        super().__init__()
        half = max(hidden_channels // 2, 1)
        self.net = nn.Sequential(
            nn.Conv2d(latent_dim, hidden_channels, 3, padding=1),
            _residual_stack(hidden_channels, res_channels, num_res_blocks),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden_channels, half, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(half, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, latent: Tensor) -> Tensor:
        """``(N, latent_dim, h, w)`` -> unbounded frames ``(N, out_channels, 4h, 4w)``."""
        return self.net(latent)
