"""ST-PixelCNN: the autoregressive prior over hierarchical code indices (S-HR-VQVAE paper §4.2, eq. 7).

The prior models the tree indices (B, T, L, h, w) of a clip -- local indices k_i in [0, M), L layers coarse
first -- and predicts future frames from past ones. It is split into two parts so that decoding can cache:

* a **context trunk** that turns the frames before t into a per-position context map for frame t (gated
  causal 3D convolutions + causal spatiotemporal attention); it runs once per frame, and
* an **intra-frame head** that predicts frame t's tokens from that context and the tokens of frame t already
  decoded, in one of two orders:

  - ``'raster'`` (the paper's): positions in raster order, layers coarse-to-fine at each position. A gated
    PixelCNN (vertical + horizontal stacks, masks 'A' then 'B') sees positions before p; the token's coarser
    layers at p enter through their parent path embedding.
  - ``'parallel'`` (ours, for speed): layer by layer, every position of a layer at once. An unmasked conv
    head sees all positions of the coarser layers of frame t.

A child index means nothing without its parent, so every token is embedded by its full path in the code
tree (global index g_i = g_{i-1} * M + k_i, one table of M**i rows per layer) and layer i is predicted given
the prefix sum S_i of the path embeddings of layers < i -- the prior's analogue of the quantizer's partial
sums e^1 + ... + e^i.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.attention import AttentionCache, CausalSpatioTemporalAttention
from ..modules.masked_conv import CausalConv3d, GatedCausalBlock3d, GatedPixelCNNLayer, gate

__all__ = ['STPixelCNN', 'PathEmbedding', 'CausalContextTrunk']

DECODE_ORDERS = ('raster', 'parallel')
MAX_PATH_ROWS = 1 << 20


class PathEmbedding(nn.Module):
    """Embeds every token by its full path from the root of the code tree.

    The path of length i at a position (tokens k_1..k_i) has global index g_i = g_{i-1} * M + k_i in
    [0, M**i) and its own learned vector E_i[g_i]. What the prior consumes are the prefix sums
    S_i = E_1[g_1] + ... + E_i[g_i] (S_0 = 0): what is known at a position once its i coarsest layers are
    decoded, shared by every path through the same ancestors. Since S_i is a function of g_i alone, the sums
    are formed on the (small) tables rather than on the (large) index maps: one lookup per token.
    """

    def __init__(self, num_layers: int, codebook_size: int, dim: int):
        super().__init__()
        sizes = [codebook_size ** i for i in range(1, num_layers + 1)]
        if sum(sizes) > MAX_PATH_ROWS:
            raise ValueError(f"A tree of {num_layers} layers x {codebook_size} codewords has {sum(sizes)} paths, "
                             f"too many to embed (limit {MAX_PATH_ROWS}); use fewer layers or a smaller codebook.")
        self.num_layers = num_layers
        self.codebook_size = codebook_size
        self.register_buffer('offsets', torch.tensor([0, 1] + sizes).cumsum(0)[:-1], persistent=False)
        self.tables = nn.ParameterList(nn.Parameter(torch.randn(size, dim) * num_layers ** -0.5)
                                       for size in sizes)

    def prefix_table(self) -> torch.Tensor:
        """All prefix sums, (1 + M + ... + M**L, dim): row offsets[i] + g_i holds S_i of path g_i."""
        table = [self.tables[0].new_zeros(1, self.tables[0].shape[1])]
        for path_table in self.tables:
            table.append(table[-1].repeat_interleave(self.codebook_size, dim=0) + path_table)
        return torch.cat(table)

    def paths(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (B, T, L, h, w) local -> rows (B, T, L + 1, h, w) of S_0..S_L in the prefix table."""
        path = torch.zeros_like(indices[:, :, 0])
        rows = [path]
        for layer in range(self.num_layers):
            path = path * self.codebook_size + indices[:, :, layer]
            rows.append(path + self.offsets[layer + 1])
        return torch.stack(rows, dim=2)

    def prefix_sums(self, indices: torch.Tensor, lengths: Sequence[int], table: Optional[torch.Tensor] = None
                    ) -> torch.Tensor:
        """indices (B, T, L, h, w) -> S (B, T, len(lengths), dim, h, w) for the path lengths `lengths`.

        The result is laid out channels-last in memory, the layout the convolutions run fastest in.
        """
        table = self.prefix_table() if table is None else table
        return F.embedding(self.paths(indices)[:, :, list(lengths)], table).permute(0, 1, 2, 5, 3, 4)

    def row(self, length: int, path: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Prefix sum S_length (..., dim) of global paths `path` (any shape), from `prefix_table()`."""
        return F.embedding(path + self.offsets[length], table)


@dataclass
class TrunkState:
    """What the trunk keeps between incremental calls: causal-conv histories and attention caches."""
    local_past: Optional[torch.Tensor] = None
    block_pasts: List[Optional[torch.Tensor]] = field(default_factory=list)
    attention_caches: List[Optional[AttentionCache]] = field(default_factory=list)


class CausalContextTrunk(nn.Module):
    """Per-position context for frame t from frames < t only (the temporally causal part of the prior).

    It reads the stream [start, f_0, f_1, ...] of frame embeddings f_t = S_L; output j depends on stream
    items <= j, i.e. on frames < j, so the shift by the learned start token is what makes it strictly causal.
    Two paths, summed:

    * local: a causal 3D conv at full token resolution over the two preceding frames (where things
      were and how fast they moved), and
    * global: a 2x2 space-to-depth conv to half resolution, `num_blocks` gated causal 3D blocks with causal
      spatiotemporal attention after every second block (long-range and long-term context), and a 2x2
      transposed conv back.

    The expensive part works at a quarter of the positions, which is what keeps a training step on a CPU
    around a second at the Moving-MNIST defaults.
    """

    def __init__(self, embed_dim: int, hidden_channels: int, num_blocks: int, num_heads: int, kernel_size: int,
                 max_frames: int):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, embed_dim, 1, 1, 1))
        self.local = CausalConv3d(embed_dim, embed_dim, kernel_size, temporal_kernel=2)
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

        history = self.local.temporal_kernel - 1
        past = state.local_past
        if past is None:
            past = frames.new_zeros(*frames.shape[:2], history, height, width)
        past = torch.cat([past, frames[:, :, :first_output]], dim=2)[:, :, -history:]
        local, local_past = self.local(frames[:, :, first_output:], past)

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
        return context, TrunkState(local_past, block_pasts, attention_caches)


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


def _choose(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits (N, M, ...) -> indices (N, ...): argmax at temperature 0, else a sample of softmax(logits / T)."""
    if temperature <= 0:
        return logits.argmax(dim=1)
    flat = logits.movedim(1, -1)
    probs = torch.softmax(flat.reshape(-1, flat.shape[-1]).float() / temperature, dim=-1)
    return torch.multinomial(probs, 1).view(flat.shape[:-1])


class STPixelCNN(nn.Module):
    """Prior p(Q_t | Q_<t) over tree indices with gated masked 3D convolutions and causal ST attention.

    Args:
        num_layers: L, layers of the code tree.
        codebook_size: M, codewords per codebook.
        hidden_channels: width of the half-resolution trunk; the full-resolution parts (path embeddings,
            heads) use half of it.
        num_blocks: gated causal 3D blocks in the trunk (attention follows every second one).
        num_heads: attention heads.
        kernel_size: spatial kernel of every convolution (odd, >= 3).
        max_frames: the longest clip (context + future) the prior handles.
        decode_order: ``'parallel'`` or ``'raster'`` (see the module docstring); only that order's head is
            built, so the parameter count is the model's.
    """

    def __init__(self, num_layers: int, codebook_size: int, hidden_channels: int = 64, num_blocks: int = 4,
                 num_heads: int = 4, kernel_size: int = 3, max_frames: int = 32, decode_order: str = 'parallel'):
        super().__init__()
        if decode_order not in DECODE_ORDERS:
            raise ValueError(f"decode_order must be one of {DECODE_ORDERS}, got {decode_order!r}.")
        if num_layers < 1 or codebook_size < 2:
            raise ValueError(f"STPixelCNN needs num_layers >= 1 and codebook_size >= 2, got {num_layers} "
                             f"and {codebook_size}.")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3 (a PixelCNN mask needs a neighbourhood), "
                             f"got {kernel_size}.")
        if num_blocks < 1 or hidden_channels < 2:
            raise ValueError(f"STPixelCNN needs num_blocks >= 1 and hidden_channels >= 2, got {num_blocks} "
                             f"and {hidden_channels}.")
        self.num_layers = num_layers
        self.codebook_size = codebook_size
        self.max_frames = max_frames
        self.decode_order = decode_order
        dim = max(hidden_channels // 2, 1)
        self.embedding = PathEmbedding(num_layers, codebook_size, dim)
        self.trunk = CausalContextTrunk(dim, hidden_channels, num_blocks, num_heads, kernel_size, max_frames)
        if decode_order == 'parallel':
            self.head = ParallelHead(dim, num_layers, kernel_size)
        else:
            self.head = RasterHead(dim, kernel_size)
        self.decoder = LayerDecoder(dim, num_layers, codebook_size)

    def _check_indices(self, indices: torch.Tensor, name: str, extra_frames: int = 0) -> torch.Tensor:
        """Validates (B, T, L, h, w) integer indices in [0, M) and returns them as int64."""
        problem = None
        if not torch.is_tensor(indices) or indices.dim() != 5 or indices.shape[2] != self.num_layers:
            shape = tuple(indices.shape) if torch.is_tensor(indices) else type(indices).__name__
            problem = f"must be a tensor of shape (B, T, L={self.num_layers}, h, w), got {shape}"
        elif indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            problem = f"must hold integer code indices (int64), got dtype {indices.dtype}"
        elif indices.numel() == 0:
            problem = f"is empty (shape {tuple(indices.shape)})"
        elif indices.shape[1] + extra_frames > self.max_frames:
            problem = (f"spans {indices.shape[1] + extra_frames} frames, more than max_frames={self.max_frames} "
                       f"(build the prior with a larger max_frames)")
        elif int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size:
            problem = (f"holds indices in [{int(indices.min())}, {int(indices.max())}] but local indices must lie "
                       f"in [0, {self.codebook_size})")
        if problem is not None:
            raise ValueError(f"STPixelCNN: {name} {problem}.")
        return indices.long()

    def _logits(self, indices: torch.Tensor, first_frame: int, history: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        """Teacher-forced logits (B, T - first_frame, L, M, h, w) of frames first_frame..T-1.

        The trunk reads the frames before t from `history` (default: `indices` itself); the head reads the
        coarser layers of frame t from `indices`.
        """
        batch, frames = indices.shape[:2]
        history = indices if history is None else history
        table = self.embedding.prefix_table()
        stream = self.embedding.prefix_sums(history[:, :-1], [self.num_layers], table)[:, :, 0]
        context, _ = self.trunk(stream.transpose(1, 2), first_output=first_frame)
        context = context.transpose(1, 2).flatten(0, 1)                         # (B*T', E, h, w)
        known = self.embedding.prefix_sums(indices[:, first_frame:], range(self.num_layers + 1), table)
        known = known.flatten(0, 1)                                             # (B*T', L+1, E, h, w)
        parents = known[:, :-1]
        if self.decode_order == 'parallel':
            features = self.head(parents + context[:, None])
        else:
            features = self.head(known[:, -1], context)[:, None]
        logits = self.decoder(features + parents)
        return logits.unflatten(0, (batch, frames - first_frame))

    def forward(self, indices: torch.Tensor, first_frame: int = 0, history: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        """indices (B, T, L, h, w) -> logits (B, T - first_frame, L, M, h, w) of frames first_frame..T-1.

        The logits of a token depend only on the tokens before it in the prior's decode order (see the module
        docstring). Frames before `first_frame` are context only, and their heads are not run. With `history`
        (B, T, L, h, w) the past frames are read from it instead of from `indices` (see
        :meth:`resample_history`); the coarser layers of the predicted frame still come from `indices`.
        """
        indices, history = self._checked(indices, first_frame, 'first_frame', history)
        return self._logits(indices, first_frame, history)

    def loss(self, indices: torch.Tensor, first_frame: int, history: Optional[torch.Tensor] = None,
             layer_weights: Optional[Sequence[float]] = None) -> torch.Tensor:
        """Cross-entropy (paper eq. 7, in nats) of frames first_frame..T-1 of indices (B, T, L, h, w).

        Teacher-forced: frame t is predicted from the frames before it in `history` (default `indices`).
        `layer_weights` (one per layer) weight each layer's mean cross-entropy; the result is their weighted
        mean (default: every token counts the same).
        """
        indices, history = self._checked(indices, first_frame, 'first_frame', history)
        logits = self._logits(indices, first_frame, history)
        targets = indices[:, first_frame:]
        if layer_weights is None:
            return F.cross_entropy(logits.movedim(3, 1), targets)
        if len(layer_weights) != self.num_layers:
            raise ValueError(f"layer_weights needs one weight per layer ({self.num_layers}), got "
                             f"{len(layer_weights)}.")
        weights = logits.new_tensor(layer_weights)
        per_layer = F.cross_entropy(logits.movedim(3, 1), targets, reduction='none').mean(dim=(0, 1, 3, 4))
        return (weights * per_layer).sum() / weights.sum()

    def _checked(self, indices: torch.Tensor, first_frame: int, name: str, history: Optional[torch.Tensor]
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Validated int64 `indices` and `history`; `name` is what the caller calls `first_frame`."""
        indices = self._check_indices(indices, 'indices')
        if history is not None:
            history = self._check_indices(history, 'history')
            if history.shape != indices.shape:
                raise ValueError(f"STPixelCNN: history must have the shape of indices {tuple(indices.shape)}, "
                                 f"got {tuple(history.shape)}.")
        if not 0 <= first_frame < indices.shape[1]:
            raise ValueError(f"{name} must lie in [0, T={indices.shape[1]}) so that some frame is predicted, "
                             f"got {first_frame}.")
        return indices, history

    @torch.no_grad()
    def resample_history(self, indices: torch.Tensor, probability: float, temperature: float = 1.0,
                         rounds: int = 1) -> torch.Tensor:
        """Self-resampled history for rollout-robust training (scheduled sampling on the prior's own outputs).

        indices (B, T, L, h, w) -> history (B, T, L, h, w). In each of `rounds` rounds, every frame t >= 1 of
        every clip is, with `probability`, replaced by the frame the prior decodes (sampled at `temperature`;
        0 takes the argmax) from the frames before t in the previous round's history (the first round reads
        the true frames); frame 0 is always kept. One round shows the prior its one-step mistakes, r rounds
        mistakes made on up to r - 1 of its own frames, T - 1 rounds at probability 1 its full rollout.
        Trained on such histories with the true targets, the prior learns to continue from its own mistakes
        instead of compounding them, which a purely teacher-forced prior never sees (exposure bias).

        The parallel order decodes each frame exactly as :meth:`predict` does; the raster order, whose
        decoding is sequential, samples every layer from its teacher-forced logits instead (children under
        the true parents).
        """
        indices = self._check_indices(indices, 'indices')
        batch, frames = indices.shape[:2]
        history = indices
        if frames < 2 or probability <= 0:
            return history
        table = self.embedding.prefix_table()
        for _ in range(int(rounds)):
            if self.decode_order == 'parallel':
                stream = self.embedding.prefix_sums(history[:, :-1], [self.num_layers], table)[:, :, 0]
                context, _ = self.trunk(stream.transpose(1, 2), first_output=1)
                decoded, _ = self._decode_parallel(context.transpose(1, 2).flatten(0, 1), table, float(temperature))
                decoded = decoded.unflatten(0, (batch, frames - 1))
            else:
                decoded = _choose(self._logits(indices, 1, history).movedim(3, 1), float(temperature))
            replace = torch.rand(batch, frames - 1, 1, 1, 1, device=indices.device) < probability
            history = torch.cat([indices[:, :1], torch.where(replace, decoded, history[:, 1:])], dim=1)
        return history

    @torch.no_grad()
    def predict(self, context: torch.Tensor, num_future: int, temperature: float = 0.0) -> torch.Tensor:
        """context (B, T_in, L, h, w) -> future indices (B, num_future, L, h, w) int64.

        Decodes frame by frame; the trunk runs once per frame on the newest frame only (its causal convs
        and attention keep their history), and the head decodes the frame in the prior's order: 'parallel'
        in L passes over the whole frame, 'raster' position by position with the incremental PixelCNN of
        `RasterHead`. temperature 0 takes the argmax, > 0 samples from softmax(logits / temperature).
        """
        if int(num_future) < 1:
            raise ValueError(f"num_future must be >= 1, got {num_future}.")
        context = self._check_indices(context, 'context', extra_frames=int(num_future))
        table = self.embedding.prefix_table()
        stream = self.embedding.prefix_sums(context, [self.num_layers], table)[:, :, 0].transpose(1, 2)
        frame_context, state = self.trunk(stream, first_output=context.shape[1])
        decode = self._decode_parallel if self.decode_order == 'parallel' else self._decode_raster
        future = []
        for step in range(int(num_future)):
            tokens, frame_embedding = decode(frame_context[:, :, -1], table, float(temperature))
            future.append(tokens)
            if step + 1 < num_future:
                frame_context, state = self.trunk(frame_embedding[:, :, None], state)
        return torch.stack(future, dim=1)

    def _decode_parallel(self, context: torch.Tensor, table: torch.Tensor, temperature: float
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """context (B, E, h, w) -> tokens (B, L, h, w), frame embedding S_L (B, E, h, w)."""
        known = torch.zeros_like(context)
        path = torch.zeros(context.shape[0], *context.shape[2:], dtype=torch.long, device=context.device)
        tokens = []
        for layer in range(self.num_layers):
            features = self.head.layer_features(known + context, layer)
            logits = self.decoder.layer_logits(features + known, layer)
            token = _choose(logits, temperature)
            path = path * self.codebook_size + token
            known = self.embedding.row(layer + 1, path, table).permute(0, 3, 1, 2)
            tokens.append(token)
        return torch.stack(tokens, dim=1), known

    def _decode_raster(self, context: torch.Tensor, table: torch.Tensor, temperature: float
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        """context (B, E, h, w) -> tokens (B, L, h, w), frame embedding S_L (B, E, h, w)."""
        batch, _, height, width = context.shape
        frame = torch.zeros_like(context)
        tokens = torch.zeros(batch, self.num_layers, height, width, dtype=torch.long, device=context.device)
        conditioning = self.head.conditioning(context)
        for row in range(height):
            row_state = self.head.start_row(frame, conditioning, row)
            for col in range(width):
                feature = self.head.feature_at(frame, conditioning, row_state, row, col)    # (B, E)
                known = torch.zeros_like(feature)
                path = torch.zeros(batch, dtype=torch.long, device=context.device)
                for layer in range(self.num_layers):
                    logits = self.decoder.layer_logits(feature + known, layer)
                    token = _choose(logits, temperature)
                    path = path * self.codebook_size + token
                    known = self.embedding.row(layer + 1, path, table)
                    tokens[:, layer, row, col] = token
                frame[:, :, row, col] = known
        return tokens, frame
