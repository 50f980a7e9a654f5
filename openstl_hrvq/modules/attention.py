"""Causal spatiotemporal self-attention over (t, h, w) voxels, made cheap enough for a CPU.

Full self-attention over every voxel of a clip costs O((T h w)^2): for 20 frames of a 16x16 token grid at
batch 16 that is a 5120 x 5120 score map per head and sequence, far too slow on a CPU. This layer stays
genuinely spatiotemporal -- a voxel of frame t may attend to any place of any frame t' <= t -- but

* attends on a coarser voxel grid: queries, keys and values are average-pooled over `stride` x `stride`
  cells and the result is broadcast back to them. Fine local detail reaches the prior through its
  convolutions; attention's job is long-range, long-term context. In the prior's trunk (8x8 at the
  Moving-MNIST defaults) this is 20 x 16 voxels per clip: 1/256 of the score map of full voxel attention.
* masks causally by frame blocks (t' <= t) with a learned per-head bias on the frame distance t - t'
  (relative, hence stationary in time; `max_frames` bounds it). Space enters through fixed sinusoidal
  encodings of (y, x) added to queries and keys.
* keeps keys and values of past frames in a cache, so incremental decoding feeds one frame at a time and
  gets exactly what a call on the whole clip gives. Long clips are processed in chunks of query frames,
  each against only the frames it may see, which bounds memory (`max_scores`).
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_grid_encoding(height: int, width: int, dim: int, stride_h: int, stride_w: int, device, dtype
                             ) -> torch.Tensor:
    """Fixed 2D sinusoidal position encoding of a grid pooled by stride_h x stride_w from the input grid.

    Returns (height * width, dim): half the channels encode the row centre, half the column centre, in
    input-grid coordinates (so the encoding of a place does not depend on the pooling).
    """
    quarter = max(dim // 4, 1)
    freqs = torch.exp(-math.log(100.0) * torch.arange(quarter, device=device, dtype=torch.float32) / quarter)

    def encode(size: int, stride: int) -> torch.Tensor:
        centres = torch.arange(size, device=device, dtype=torch.float32) * stride + (stride - 1) / 2
        angles = centres[:, None] * freqs
        return torch.cat([angles.sin(), angles.cos()], dim=1)                  # (size, 2 * quarter)

    row_enc = encode(height, stride_h)[:, None, :].expand(height, width, 2 * quarter)
    col_enc = encode(width, stride_w)[None, :, :].expand(height, width, 2 * quarter)
    enc = torch.cat([row_enc, col_enc], dim=2).reshape(height * width, 4 * quarter)
    return F.pad(enc, (0, dim - enc.shape[1])).to(dtype)


@dataclass
class AttentionCache:
    """Keys and values (B, heads, frames * cells, head_dim) of the frames seen so far."""
    keys: torch.Tensor
    values: torch.Tensor
    num_frames: int


class CausalSpatioTemporalAttention(nn.Module):
    """Pre-norm residual multi-head attention over (B, C, T, H, W), causal in time (frame t sees t' <= t).

    Attention runs on the voxel grid pooled by `stride` x `stride` in space; its output is broadcast back to
    the stride x stride cells and added to the input.

    Args:
        channels: C.
        num_heads: attention heads (C must be divisible by it).
        max_frames: the longest clip; the relative time bias has one entry per distance 0..max_frames-1.
        stride: spatial pooling of queries, keys and values.
        max_scores: bound on the attention scores per sequence and head computed at once; longer clips are
            processed in chunks of query frames, each against only the frames it may see.
    """

    def __init__(self, channels: int, num_heads: int = 4, max_frames: int = 32, stride: int = 2,
                 max_scores: int = 1 << 18):
        super().__init__()
        if channels % num_heads != 0:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads}); "
                             f"change one of them.")
        self.num_heads = num_heads
        self.max_frames = max_frames
        self.stride = stride
        self.max_scores = max_scores
        self.norm = nn.LayerNorm(channels)
        self.query = nn.Linear(channels, channels)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, channels)
        self.time_bias = nn.Parameter(torch.zeros(num_heads, max_frames))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, heads, N, C / heads)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor, cache: Optional[AttentionCache] = None
                ) -> Tuple[torch.Tensor, AttentionCache]:
        """x (B, C, T, H, W): the T frames after those in `cache` -> (B, C, T, H, W), updated cache."""
        b, c, t, h, w = x.shape
        start = 0 if cache is None else cache.num_frames
        if start + t > self.max_frames:
            raise ValueError(f"Attention was built for at most max_frames={self.max_frames} frames but got "
                             f"{start + t}; build the prior with a larger max_frames.")
        stride_h, stride_w = min(self.stride, h), min(self.stride, w)
        pooled = F.avg_pool3d(x, (1, stride_h, stride_w), ceil_mode=True)          # (B, C, T, h', w')
        gh, gw = pooled.shape[-2:]
        cells = gh * gw
        tokens = self.norm(pooled.permute(0, 2, 3, 4, 1).reshape(b, t, cells, c))
        position = sinusoidal_grid_encoding(gh, gw, c, stride_h, stride_w, x.device, x.dtype)
        queries = self._heads(self.query(tokens + position).flatten(1, 2))       # (B, heads, T*cells, d)
        keys = self._heads(self.key(tokens + position).flatten(1, 2))
        values = self._heads(self.value(tokens).flatten(1, 2))
        if cache is not None:
            keys = torch.cat([cache.keys, keys], dim=2)
            values = torch.cat([cache.values, values], dim=2)

        query_time = torch.arange(start, start + t, device=x.device)
        distance = query_time[:, None] - torch.arange(start + t, device=x.device)[None, :]
        bias = self.time_bias[:, distance.clamp(min=0)].masked_fill(distance < 0, float('-inf'))
        chunk = max(1, self.max_scores // (cells * cells * (start + t)))
        attended = []
        for first in range(0, t, chunk):
            last = min(first + chunk, t)
            visible = start + last
            mask = bias[:, first:last, :visible].repeat_interleave(cells, 1).repeat_interleave(cells, 2)
            attended.append(F.scaled_dot_product_attention(
                queries[:, :, first * cells:last * cells], keys[:, :, :visible * cells],
                values[:, :, :visible * cells], attn_mask=mask[None].to(queries.dtype)))
        update = self.out(torch.cat(attended, dim=2).transpose(1, 2).flatten(2))   # (B, T*cells, C)
        update = update.view(b, t, gh, gw, c).permute(0, 4, 1, 2, 3)
        update = update.repeat_interleave(stride_h, 3).repeat_interleave(stride_w, 4)[..., :h, :w]
        return x + update, AttentionCache(keys, values, start + t)
