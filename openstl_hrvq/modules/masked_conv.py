"""Masked convolutions for the ST-PixelCNN prior: causal in time, PixelCNN-masked in space.

Every mask here is realised by the kernel's shape plus one-sided padding rather than by multiplying a full
kernel with a 0/1 mask. The function computed is exactly that of the masked kernel, but no multiply-adds are
spent on taps that are always zero (about half of them for a spatial PixelCNN mask), which matters on CPU.

Layouts: 3D layers take (B, C, T, H, W); 2D layers take (N, C, H, W).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def gate(x: torch.Tensor) -> torch.Tensor:
    """Gated activation tanh(a) * sigmoid(b) of Gated PixelCNN; (N, 2C, ...) -> (N, C, ...)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Moves (N, C, H, W) features one row down (zeros enter at the top), so row r holds what row r-1 saw."""
    return F.pad(x, (0, 0, 1, -1))


class CausalConv3d(nn.Module):
    """3D convolution over (B, C, T, H, W), causal in time and unmasked in space.

    Output frame t sees input frames t - temporal_kernel + 1 .. t in a k x k spatial neighbourhood; the
    spatial extent is unmasked because it is only applied to frames that are entirely known.
    `forward(x, past)` takes the `temporal_kernel - 1` input frames that precede `x` (None: zeros, i.e. the
    start of the sequence) and returns them updated, so feeding a sequence in chunks (incremental decoding)
    gives exactly the result of one call on the whole sequence.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, temporal_kernel: int = 2):
        super().__init__()
        if kernel_size % 2 != 1 or temporal_kernel < 1:
            raise ValueError(f"CausalConv3d needs an odd kernel_size and temporal_kernel >= 1, got "
                             f"{kernel_size} and {temporal_kernel}.")
        self.temporal_kernel = temporal_kernel
        self.conv = nn.Conv3d(in_channels, out_channels, (temporal_kernel, kernel_size, kernel_size),
                              padding=(0, kernel_size // 2, kernel_size // 2))

    def forward(self, x: torch.Tensor, past: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x (B, C_in, T, H, W), past (B, C_in, kt-1, H, W) or None -> (B, C_out, T, H, W), new past."""
        history = self.temporal_kernel - 1
        if history == 0:
            return self.conv(x), None
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], history, *x.shape[3:])
        x = torch.cat([past, x], dim=2)
        return self.conv(x), x[:, :, -history:]


class GatedCausalBlock3d(nn.Module):
    """Residual gated block over (B, C, T, H, W), causal in time: x + W_o * gate(CausalConv3d(W_i * x)).

    A 1x1x1 bottleneck to C/2 channels in front of the spatiotemporal kernel keeps the block at a quarter of
    the multiply-adds of a full-width gated conv, which is what lets the trunk run at the speed targets.
    """

    def __init__(self, channels: int, kernel_size: int = 3, temporal_kernel: int = 2):
        super().__init__()
        inner = max(channels // 2, 1)
        self.reduce = nn.Conv3d(channels, inner, 1)
        self.conv = CausalConv3d(inner, 2 * inner, kernel_size, temporal_kernel)
        self.expand = nn.Conv3d(inner, channels, 1)

    def forward(self, x: torch.Tensor, past: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x (B, C, T, H, W) -> (B, C, T, H, W), plus the causal conv's new past (see CausalConv3d)."""
        y, past = self.conv(self.reduce(x), past)
        return x + self.expand(gate(y)), past


class VerticalStackConv(nn.Module):
    """Vertical stack of a gated PixelCNN: output row r sees input rows r - k//2 .. r, columns c +- k//2.

    It includes its own row, so it may only reach the horizontal stack through `shift_down`, after which
    row r sees strictly earlier rows (this is how the two stacks avoid PixelCNN's blind spot).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.half = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (self.half + 1, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        return self.conv(F.pad(x, (self.half, self.half, self.half, 0)))


class HorizontalStackConv(nn.Module):
    """Horizontal stack of a gated PixelCNN: output (r, c) sees input row r, columns c - k//2 .. c.

    mask_type 'A' (first layer, whose input is the tokens themselves) excludes column c; 'B' includes it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, mask_type: str = 'B'):
        super().__init__()
        if mask_type not in ('A', 'B') or kernel_size < 3:
            raise ValueError(f"HorizontalStackConv needs mask_type 'A' or 'B' and kernel_size >= 3, got "
                             f"{mask_type!r} and {kernel_size}.")
        self.half = kernel_size // 2
        self.exclude_centre = mask_type == 'A'
        self.conv = nn.Conv2d(in_channels, out_channels, (1, self.half + (not self.exclude_centre)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H, W)."""
        return self.conv(F.pad(x, (self.half, -1 if self.exclude_centre else 0)))

    def at(self, row: torch.Tensor, col: int) -> torch.Tensor:
        """The output at column `col` of one input row (N, C_in, W) -> (N, C_out).

        Tap j of the kernel reads column col - k//2 + j for both mask types; columns left of the frame are
        the zero padding. Computed as a few matrix products, which is what one-position-at-a-time decoding
        needs (a convolution's set-up costs more than its arithmetic here).
        """
        out = self.conv.bias.expand(row.shape[0], -1)
        for tap in range(self.conv.kernel_size[1]):
            source = col - self.half + tap
            if source >= 0:
                out = out + F.linear(row[:, :, source], self.conv.weight[:, :, 0, tap])
        return out


class GatedPixelCNNLayer(nn.Module):
    """One gated PixelCNN layer (vertical + horizontal stacks) with a per-position conditioning map.

    The horizontal output at (r, c) depends on the input at rows < r and at row r, columns < c ('A') or
    <= c ('B'), and on `cond` anywhere: callers only pass conditioning that carries no information about
    the current frame's tokens. The first layer ('A') has no residual on the horizontal stack, since its
    input at (r, c) is the very token being predicted.
    """

    def __init__(self, channels: int, cond_channels: int, kernel_size: int = 3, mask_type: str = 'B'):
        super().__init__()
        self.vertical = VerticalStackConv(channels, 2 * channels, kernel_size)
        self.horizontal = HorizontalStackConv(channels, 2 * channels, kernel_size, mask_type)
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        self.cond = nn.Conv2d(cond_channels, 4 * channels, 1)
        self.residual = mask_type == 'B'

    def conditioning(self, cond: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """cond (N, C_cond, H, W) -> the biases (N, 2C, H, W) it adds to the vertical and horizontal stacks."""
        cond_v, cond_h = self.cond(cond).chunk(2, dim=1)
        return cond_v, cond_h

    def forward(self, vertical: torch.Tensor, horizontal: torch.Tensor, cond: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """vertical, horizontal (N, C, H, W), cond (N, C_cond, H, W) -> new (vertical, horizontal)."""
        cond_v, cond_h = self.conditioning(cond)
        v_pre = self.vertical(vertical) + cond_v
        h_pre = self.horizontal(horizontal) + self.vertical_to_horizontal(shift_down(v_pre)) + cond_h
        h_out = self.horizontal_out(gate(h_pre))
        return gate(v_pre), horizontal + h_out if self.residual else h_out

    def horizontal_at(self, row: torch.Tensor, col: int, bias: torch.Tensor) -> torch.Tensor:
        """Horizontal output (N, C) at column `col` of input row (N, C, W), given what the vertical stack
        and the conditioning add there, `bias` (N, 2C); equals `forward`'s output at that position."""
        h_pre = self.horizontal.at(row, col) + bias
        h_out = F.linear(gate(h_pre), self.horizontal_out.weight[:, :, 0, 0], self.horizontal_out.bias)
        return row[:, :, col] + h_out if self.residual else h_out
