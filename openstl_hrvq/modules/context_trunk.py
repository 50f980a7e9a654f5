"""The temporally causal part of the ST-PixelCNN prior: per-position context for frame t from frames < t.

Runs over a whole clip in training and incrementally, one new frame at a time, when decoding; the state it
hands back between calls (:class:`TrunkState`) makes both give the same contexts.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionCache, CausalSpatioTemporalAttention
from .masked_conv import CausalConv3d, GatedCausalBlock3d

__all__ = ['CausalContextTrunk', 'TrunkState']


@dataclass
class TrunkState:
    """What the trunk keeps between incremental calls: causal-conv histories and attention caches."""
    local_past: Optional[torch.Tensor] = None
    local_block_pasts: List[Optional[torch.Tensor]] = field(default_factory=list)
    block_pasts: List[Optional[torch.Tensor]] = field(default_factory=list)
    attention_caches: List[Optional[AttentionCache]] = field(default_factory=list)

    def repeat_interleave(self, copies: int) -> 'TrunkState':
        """The state of every clip repeated `copies` times along the batch (clip b's copies at rows
        b * copies ... b * copies + copies - 1), so that several rollouts continue from one context pass."""
        def repeat(tensor: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if tensor is None else tensor.repeat_interleave(copies, dim=0)

        caches = [None if cache is None else AttentionCache(repeat(cache.keys), repeat(cache.values), cache.num_frames)
                  for cache in self.attention_caches]
        return TrunkState(repeat(self.local_past), [repeat(past) for past in self.local_block_pasts],
                          [repeat(past) for past in self.block_pasts], caches)


class CausalContextTrunk(nn.Module):
    """Per-position context for frame t from frames < t only (the temporally causal part of the prior).

    It reads the stream [start, f_0, f_1, ...] of frame embeddings f_t = S_L; output j depends on stream
    items <= j, i.e. on frames < j, so the shift by the learned start token is what makes it strictly causal.
    Two paths, summed:

    * local: a causal 3D conv at full token resolution over the two preceding frames (where things
      were and how fast they moved), followed by `local_blocks` gated causal 3D blocks at that resolution
      (nonlinear motion features where the tokens are), and
    * global: a 2x2 space-to-depth conv to half resolution, `num_blocks` gated causal 3D blocks with causal
      spatiotemporal attention after every second block (long-range and long-term context), and a 2x2
      transposed conv back.

    The expensive part works at a quarter of the positions, which is what keeps a training step on a CPU
    around a second at the Moving-MNIST defaults.
    """

    def __init__(self, embed_dim: int, hidden_channels: int, num_blocks: int, num_heads: int, kernel_size: int,
                 max_frames: int, local_blocks: int = 0):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, embed_dim, 1, 1, 1))
        self.local = CausalConv3d(embed_dim, embed_dim, kernel_size, temporal_kernel=2)
        self.local_blocks = nn.ModuleList(GatedCausalBlock3d(embed_dim, kernel_size) for _ in range(local_blocks))
        self.down = nn.Conv3d(embed_dim, hidden_channels, (1, 2, 2), stride=(1, 2, 2))
        self.blocks = nn.ModuleList(GatedCausalBlock3d(hidden_channels, kernel_size) for _ in range(num_blocks))
        self.attention_after = [i for i in range(num_blocks) if i % 2 == 1 or i == num_blocks - 1]
        self.attentions = nn.ModuleList(CausalSpatioTemporalAttention(hidden_channels, num_heads, max_frames)
                                        for _ in self.attention_after)
        self.up = nn.ConvTranspose3d(hidden_channels, embed_dim, (1, 2, 2), stride=(1, 2, 2))

    def forward(self, frames: torch.Tensor, state: Optional[TrunkState] = None, first_output: int = 0
                ) -> Tuple[torch.Tensor, TrunkState]:
        """Feeds frames (B, E, T, h, w) -> context (B, E, T' - first_output, h, w) and the new state.

        With `state` None the start token is prepended, so T' = T + 1 outputs are the contexts of frames
        0..T; otherwise the T outputs are the contexts of the frames after those already fed. Only outputs
        from `first_output` on are computed at full resolution (training needs just the predicted frames).
        """
        if state is None:
            state = TrunkState()
            frames = torch.cat([self.start.expand(frames.shape[0], -1, 1, *frames.shape[3:]), frames], dim=2)
        frames = frames.contiguous(memory_format=torch.channels_last_3d)
        height, width = frames.shape[-2:]

        # The local blocks read the local conv's output of earlier frames, so with blocks every frame is run
        # at full resolution; without them only the requested outputs are.
        local_start = 0 if len(self.local_blocks) else first_output
        history = self.local.temporal_kernel - 1
        past = state.local_past
        if past is None:
            past = frames.new_zeros(*frames.shape[:2], history, height, width)
        past = torch.cat([past, frames[:, :, :local_start]], dim=2)[:, :, -history:]
        local, local_past = self.local(frames[:, :, local_start:], past)
        local_block_pasts = []
        for i, block in enumerate(self.local_blocks):
            local, block_past = block(local, state.local_block_pasts[i] if state.local_block_pasts else None)
            local_block_pasts.append(block_past)
        local = local[:, :, first_output - local_start:]

        x = self.down(F.pad(frames, (0, width % 2, 0, height % 2)))
        block_pasts, attention_caches = [], []
        attention_index = 0
        for i, block in enumerate(self.blocks):
            x, past = block(x, state.block_pasts[i] if state.block_pasts else None)
            block_pasts.append(past)
            if i in self.attention_after:
                cache = state.attention_caches[attention_index] if state.attention_caches else None
                x, cache = self.attentions[attention_index](x, cache)
                attention_caches.append(cache)
                attention_index += 1
        global_context = self.up(x[:, :, first_output:])[..., :height, :width]
        context = local + global_context
        return context, TrunkState(local_past, local_block_pasts, block_pasts, attention_caches)
