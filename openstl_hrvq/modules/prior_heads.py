"""The intra-frame heads of the ST-PixelCNN prior and its per-layer logit decoder.

A head turns frame t's context (from :class:`~openstl_hrvq.modules.context_trunk.CausalContextTrunk`) and the
tokens of frame t already decoded into a feature per position and layer; :class:`LayerDecoder` maps it to the
M logits of that layer. :class:`ParallelHead` decodes a layer at every position at once, :class:`RasterHead`
(the paper's gated PixelCNN) position by position.
"""
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .masked_conv import GatedPixelCNNLayer, gate

__all__ = ['LayerDecoder', 'ParallelHead', 'RasterHead', 'RasterRow', 'GatedResidualBlock2d']


class GatedResidualBlock2d(nn.Module):
    """x + W_o * gate(conv_kxk(x)) over (N, C, H, W), unmasked in space."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, kernel_size, padding=kernel_size // 2)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return x + self.out(gate(self.conv(x)))


class ParallelHead(nn.Module):
    """Features for layer i of frame t from its context and every position of layers < i of frame t.

    Input per layer: context + S_i + a layer embedding; gated residual k x k blocks mix positions freely,
    which is allowed because all positions of the coarser layers are decoded before layer i.
    """

    def __init__(self, dim: int, num_layers: int, kernel_size: int, depth: int = 1):
        super().__init__()
        self.layer_embedding = nn.Parameter(torch.zeros(num_layers, dim, 1, 1))
        self.blocks = nn.Sequential(*(GatedResidualBlock2d(dim, kernel_size) for _ in range(depth)))

    def forward(self, known: torch.Tensor) -> torch.Tensor:
        """known (N, L, E, h, w): context + S_i for every layer i -> features (N, L, E, h, w)."""
        x = (known + self.layer_embedding).flatten(0, 1)
        return self.blocks(x.contiguous(memory_format=torch.channels_last)).unflatten(0, known.shape[:2])

    def layer_features(self, known: torch.Tensor, layer: int) -> torch.Tensor:
        """known (N, E, h, w): context + S_layer -> features (N, E, h, w) of that layer alone."""
        x = known + self.layer_embedding[layer]
        return self.blocks(x.contiguous(memory_format=torch.channels_last))


@dataclass
class RasterRow:
    """Incremental state of the raster head within one row: what the vertical stacks pass down to each
    layer's horizontal stack, (N, 2E, W) per layer, and the horizontal outputs decoded so far, (N, E, W)."""
    from_above: List[torch.Tensor]
    outputs: List[torch.Tensor]


class RasterHead(nn.Module):
    """Gated PixelCNN over the current frame: the feature at position p depends on positions before p only.

    Besides the whole-frame `forward` (training), it decodes incrementally like a fast PixelCNN: the
    conditioning is computed once per frame, the vertical stacks once per row (on the rows of their
    receptive field), and each position costs only its horizontal-stack taps, reusing the horizontal outputs
    of the positions to its left. This gives exactly `forward`'s features and makes raster decoding usable.
    """

    def __init__(self, dim: int, kernel_size: int, depth: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(GatedPixelCNNLayer(dim, dim, kernel_size, 'A' if i == 0 else 'B')
                                    for i in range(depth))
        self.reach = depth * (kernel_size // 2)

    def forward(self, tokens: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """tokens (N, E, h, w) embeddings S_L of the frame, context (N, E, h, w) -> features (N, E, h, w)."""
        vertical = horizontal = tokens.contiguous(memory_format=torch.channels_last)
        context = context.contiguous(memory_format=torch.channels_last)
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal, context)
        return horizontal

    def conditioning(self, context: torch.Tensor) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the (vertical, horizontal) biases (N, 2E, h, w) of the frame's context (N, E, h, w)."""
        return [layer.conditioning(context) for layer in self.layers]

    def start_row(self, tokens: torch.Tensor, conditioning: List[Tuple[torch.Tensor, torch.Tensor]], row: int
                  ) -> RasterRow:
        """Runs the vertical stacks for `row` of tokens (N, E, h, w), whose rows above it are decoded."""
        batch, dim, _, width = tokens.shape
        top = max(row - 1 - self.reach, 0)
        vertical = tokens[:, :, top:row]
        from_above = []
        for layer, (cond_v, _) in zip(self.layers, conditioning):
            if row == 0:
                last = tokens.new_zeros(batch, 2 * dim, 1, width)
            else:
                v_pre = layer.vertical(vertical) + cond_v[:, :, top:row]
                vertical, last = gate(v_pre), v_pre[:, :, -1:]
            from_above.append(layer.vertical_to_horizontal(last)[:, :, 0])
        return RasterRow(from_above, [tokens.new_zeros(batch, dim, width) for _ in self.layers])

    def feature_at(self, tokens: torch.Tensor, conditioning: List[Tuple[torch.Tensor, torch.Tensor]],
                   state: RasterRow, row: int, col: int) -> torch.Tensor:
        """Feature (N, E) at (row, col) of tokens (N, E, h, w) decoded up to the position before it."""
        horizontal = tokens[:, :, row]
        for layer, (_, cond_h), from_above, outputs in zip(self.layers, conditioning, state.from_above,
                                                          state.outputs):
            outputs[:, :, col] = layer.horizontal_at(horizontal, col, from_above[:, :, col] + cond_h[:, :, row, col])
            horizontal = outputs
        return horizontal[:, :, col]


class LayerDecoder(nn.Module):
    """Pointwise logits of layer i from a head feature plus S_i (the token's parent path): E -> M channels."""

    def __init__(self, dim: int, num_layers: int, codebook_size: int):
        super().__init__()
        self.layer_embedding = nn.Parameter(torch.zeros(num_layers, dim))
        self.hidden = nn.Linear(dim, dim)
        self.out_weight = nn.Parameter(torch.randn(num_layers, codebook_size, dim) * dim ** -0.5)
        self.out_bias = nn.Parameter(torch.zeros(num_layers, codebook_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, L, E, h, w) of every layer -> logits (N, L, M, h, w)."""
        hidden = F.relu(self.hidden(features.permute(0, 3, 4, 1, 2) + self.layer_embedding))   # (N, h, w, L, E)
        logits = torch.einsum('nhwle,lme->nhwlm', hidden, self.out_weight) + self.out_bias
        return logits.permute(0, 3, 4, 1, 2)

    def layer_logits(self, features: torch.Tensor, layer: int) -> torch.Tensor:
        """features (N, E, *spatial) of one layer -> logits (N, M, *spatial)."""
        hidden = F.relu(self.hidden(features.movedim(1, -1) + self.layer_embedding[layer]))
        return F.linear(hidden, self.out_weight[layer], self.out_bias[layer]).movedim(-1, 1)
