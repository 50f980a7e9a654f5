"""ST-PixelCNN: the autoregressive prior over hierarchical code indices (S-HR-VQVAE paper §4.2, eq. 7).

The prior models the tree indices (B, T, L, h, w) of a clip -- local indices k_i in [0, M), L layers coarse
first -- and predicts future frames from past ones. It is split into two parts so that decoding can cache:

* a **context trunk** (:mod:`openstl_hrvq.modules.context_trunk`) that turns the frames before t into a
  per-position context map for frame t (gated causal 3D convolutions + causal spatiotemporal attention); it
  runs once per frame, and
* an **intra-frame head** (:mod:`openstl_hrvq.modules.prior_heads`) that predicts frame t's tokens from that
  context and the tokens of frame t already decoded, in one of two orders:

  - ``'raster'`` (the paper's): positions in raster order, layers coarse-to-fine at each position. A gated
    PixelCNN (vertical + horizontal stacks, masks 'A' then 'B') sees positions before p; the token's coarser
    layers at p enter through their parent path embedding.
  - ``'parallel'`` (ours, for speed): layer by layer, every position of a layer at once. An unmasked conv
    head sees all positions of the coarser layers of frame t.

A child index means nothing without its parent, so every token is embedded by its full path in the code
tree (global index g_i = g_{i-1} * M + k_i, one table of M**i rows per layer) and layer i is predicted given
the prefix sum S_i of the path embeddings of layers < i -- the prior's analogue of the quantizer's partial
sums e^1 + ... + e^i (:mod:`openstl_hrvq.modules.path_embedding`). This module composes the three parts and
holds what is specific to the prior: its loss, self-resampled histories, and decoding.

The future frames are predicted in one of two orders (``future_order``):

* ``'rollout'`` (the paper's): frame by frame, each future frame from the inputs and the frames the prior
  predicted before it.
* ``'masked'`` (ours, MaskGIT-style, beyond the paper): every future frame at once from the inputs. The
  trunk reads a learned mask embedding in place of every future token it has not been shown; training
  hides a random fraction r = cos(pi u / 2), u ~ U(0, 1), of the future tokens of each clip (MaskGIT's
  cosine schedule, Chang et al. 2022), and decoding starts with all of them hidden and, in each of
  ``steps`` refinements, decodes every hidden token and keeps the most confident ones, until the schedule
  has shown them all. The prior never reads a history it has not been trained on, so a rollout cannot
  drift from its own earlier mistakes (Ye & Bilodeau's VPTR-NAR measured this on Moving MNIST).
"""
import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.context_trunk import CausalContextTrunk
from ..modules.path_embedding import PathEmbedding
from ..modules.prior_heads import LayerDecoder, ParallelHead, RasterHead

__all__ = ['STPixelCNN', 'DECODE_ORDERS', 'FUTURE_ORDERS']

#: The prior's decode orders within a frame (see the module docstring).
DECODE_ORDERS = ('raster', 'parallel')
#: The prior's orders over the future frames (see the module docstring).
FUTURE_ORDERS = ('rollout', 'masked')


class DecodedFrame(NamedTuple):
    """One frame decoded by a head: tokens (B, L, h, w), the frame's embedding S_L (B, E, h, w) the trunk reads
    next, the log-probability (B, h, w) of each position's decoded path (the masked order's ranking; else None)
    and, when asked for, the distributions (B, L, M, h, w) the tokens were drawn from (else None)."""
    tokens: torch.Tensor
    embedding: torch.Tensor
    log_prob: Optional[torch.Tensor] = None
    probabilities: Optional[torch.Tensor] = None


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
        local_blocks: gated causal 3D blocks at full token resolution after the trunk's local conv (0: the
            conv alone, a linear map of the two preceding frames).
        future_order: ``'rollout'`` (paper) or ``'masked'`` (all future frames at once; needs the parallel
            decode order), see the module docstring.
    """

    def __init__(self, num_layers: int, codebook_size: int, hidden_channels: int = 64, num_blocks: int = 4,
                 num_heads: int = 4, kernel_size: int = 3, max_frames: int = 32, decode_order: str = 'parallel',
                 local_blocks: int = 0, future_order: str = 'rollout'):
        super().__init__()
        if decode_order not in DECODE_ORDERS:
            raise ValueError(f"decode_order must be one of {DECODE_ORDERS}, got {decode_order!r}.")
        if future_order not in FUTURE_ORDERS:
            raise ValueError(f"future_order must be one of {FUTURE_ORDERS}, got {future_order!r}.")
        if future_order == 'masked' and decode_order != 'parallel':
            raise ValueError("future_order='masked' decodes every future frame at once, which needs "
                             "decode_order='parallel'.")
        if num_layers < 1 or codebook_size < 2:
            raise ValueError(f"STPixelCNN needs num_layers >= 1 and codebook_size >= 2, got {num_layers} "
                             f"and {codebook_size}.")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3 (a PixelCNN mask needs a neighbourhood), "
                             f"got {kernel_size}.")
        if num_blocks < 1 or hidden_channels < 2 or local_blocks < 0:
            raise ValueError(f"STPixelCNN needs num_blocks >= 1, hidden_channels >= 2 and local_blocks >= 0, got "
                             f"{num_blocks}, {hidden_channels} and {local_blocks}.")
        self.num_layers = num_layers
        self.codebook_size = codebook_size
        self.max_frames = max_frames
        self.decode_order = decode_order
        self.future_order = future_order
        dim = max(hidden_channels // 2, 1)
        self.embedding = PathEmbedding(num_layers, codebook_size, dim)
        self.trunk = CausalContextTrunk(dim, hidden_channels, num_blocks, num_heads, kernel_size, max_frames,
                                        local_blocks)
        if decode_order == 'parallel':
            self.head = ParallelHead(dim, num_layers, kernel_size)
        else:
            self.head = RasterHead(dim, kernel_size)
        self.decoder = LayerDecoder(dim, num_layers, codebook_size)
        if future_order == 'masked':
            # what the trunk reads at a future token it has not been shown (in place of its S_L)
            self.mask_embedding = nn.Parameter(torch.zeros(dim, 1, 1))

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

    def _stream(self, history: torch.Tensor, table: torch.Tensor, shown: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        """history (B, T, L, h, w) -> the trunk's input (B, E, T, h, w): each token's path embedding S_L, and the
        mask embedding where `shown` (B, T, h, w) is False."""
        stream = self.embedding.prefix_sums(history, [self.num_layers], table)[:, :, 0]
        if shown is not None:
            stream = torch.where(shown[:, :, None], stream, self.mask_embedding)
        return stream.transpose(1, 2)

    def _logits(self, indices: torch.Tensor, first_frame: int, history: Optional[torch.Tensor] = None,
                shown: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Teacher-forced logits (B, T - first_frame, L, M, h, w) of frames first_frame..T-1.

        The trunk reads the frames before t from `history` (default: `indices` itself), masked where `shown`
        is False; the head reads the coarser layers of frame t from `indices`.
        """
        batch, frames = indices.shape[:2]
        history = indices if history is None else history
        table = self.embedding.prefix_table()
        stream = self._stream(history[:, :-1], table, None if shown is None else shown[:, :-1])
        context, _ = self.trunk(stream, first_output=first_frame)
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

    def forward(self, indices: torch.Tensor, first_frame: int = 0, history: Optional[torch.Tensor] = None,
                shown: Optional[torch.Tensor] = None) -> torch.Tensor:
        """indices (B, T, L, h, w) -> logits (B, T - first_frame, L, M, h, w) of frames first_frame..T-1.

        The logits of a token depend only on the tokens before it in the prior's decode order (see the module
        docstring). Frames before `first_frame` are context only, and their heads are not run. With `history`
        (B, T, L, h, w) the past frames are read from it instead of from `indices` (see
        :meth:`resample_history`); the coarser layers of the predicted frame still come from `indices`.
        With `shown` (B, T, h, w) bool (the masked order only) the trunk reads the mask embedding at the past
        tokens where it is False (see :meth:`training_mask`).
        """
        indices, history, shown = self._checked(indices, first_frame, 'first_frame', history, shown)
        return self._logits(indices, first_frame, history, shown)

    def loss(self, indices: torch.Tensor, first_frame: int, history: Optional[torch.Tensor] = None,
             layer_weights: Optional[Sequence[float]] = None, shown: Optional[torch.Tensor] = None
             ) -> torch.Tensor:
        """Cross-entropy (paper eq. 7, in nats) of frames first_frame..T-1 of indices (B, T, L, h, w).

        Teacher-forced: frame t is predicted from the frames before it in `history` (default `indices`), read
        through the mask `shown` as in :meth:`forward`. `layer_weights` (one per layer) weight each layer's
        mean cross-entropy; the result is their weighted mean (default: every token counts the same).
        """
        indices, history, shown = self._checked(indices, first_frame, 'first_frame', history, shown)
        logits = self._logits(indices, first_frame, history, shown)
        targets = indices[:, first_frame:]
        if layer_weights is None:
            return F.cross_entropy(logits.movedim(3, 1), targets)
        if len(layer_weights) != self.num_layers:
            raise ValueError(f"layer_weights needs one weight per layer ({self.num_layers}), got "
                             f"{len(layer_weights)}.")
        weights = logits.new_tensor(layer_weights)
        per_layer = F.cross_entropy(logits.movedim(3, 1), targets, reduction='none').mean(dim=(0, 1, 3, 4))
        return (weights * per_layer).sum() / weights.sum()

    def training_mask(self, indices: torch.Tensor, num_context: int) -> torch.Tensor:
        """indices (B, T, L, h, w) -> shown (B, T, h, w) bool for training the masked order.

        The first `num_context` frames are always shown (they are the inputs); of the future tokens each clip
        hides a random fraction r = cos(pi u / 2), u ~ U(0, 1) -- the cosine schedule decoding follows, so
        every stage of a decoding (all hidden at first, fewer after each refinement) is trained.
        """
        if self.future_order != 'masked':
            raise ValueError("training_mask is for future_order='masked'; the rollout order shows every token.")
        batch, frames, _, height, width = indices.shape
        hidden_fraction = torch.cos(0.5 * math.pi * torch.rand(batch, 1, 1, 1, device=indices.device))
        shown = torch.rand(batch, frames, height, width, device=indices.device) >= hidden_fraction
        shown[:, :num_context] = True
        return shown

    def _checked(self, indices: torch.Tensor, first_frame: int, name: str, history: Optional[torch.Tensor],
                 shown: Optional[torch.Tensor] = None
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Validated int64 `indices` and `history` and bool `shown`; `name` is what the caller calls
        `first_frame`."""
        indices = self._check_indices(indices, 'indices')
        if history is not None:
            history = self._check_indices(history, 'history')
            if history.shape != indices.shape:
                raise ValueError(f"STPixelCNN: history must have the shape of indices {tuple(indices.shape)}, "
                                 f"got {tuple(history.shape)}.")
        if shown is not None:
            expected = (*indices.shape[:2], *indices.shape[3:])
            if self.future_order != 'masked':
                raise ValueError("STPixelCNN: shown masks the history of the masked order; this prior was built "
                                 "with future_order='rollout'.")
            if shown.dtype != torch.bool or tuple(shown.shape) != expected:
                raise ValueError(f"STPixelCNN: shown must be a bool tensor of shape {expected} (B, T, h, w), got "
                                 f"{shown.dtype} {tuple(shown.shape)}.")
        if not 0 <= first_frame < indices.shape[1]:
            raise ValueError(f"{name} must lie in [0, T={indices.shape[1]}) so that some frame is predicted, "
                             f"got {first_frame}.")
        return indices, history, shown

    @torch.no_grad()
    def resample_history(self, indices: torch.Tensor, probability: float, temperature: float = 1.0,
                         rounds: int = 1, keep_frames: int = 1) -> torch.Tensor:
        """Self-resampled history for rollout-robust training (scheduled sampling on the prior's own outputs).

        indices (B, T, L, h, w) -> history (B, T, L, h, w). In each of `rounds` rounds, every frame t >= 1 of
        every clip is, with `probability`, replaced by the frame the prior decodes (sampled at `temperature`;
        0 takes the argmax) from the frames before t in the previous round's history (the first round reads
        the true frames); the first `keep_frames` (>= 1) frames are always kept, so with the number of input
        frames only the frames a rollout predicts are swapped, and the inputs stay exact as they are at test
        time. One round shows the prior its one-step mistakes, r rounds mistakes made on up to r - 1 of its
        own frames, T - 1 rounds at probability 1 its full rollout.
        Trained on such histories with the true targets, the prior learns to continue from its own mistakes
        instead of compounding them, which a purely teacher-forced prior never sees (exposure bias).

        The parallel order decodes each frame exactly as :meth:`predict` does; the raster order, whose
        decoding is sequential, samples every layer from its teacher-forced logits instead (children under
        the true parents).
        """
        if self.future_order == 'masked':
            raise ValueError("Self-resampled histories train the rollout order; the masked order never reads its "
                             "own earlier predictions (set prior_resample_prob=0 with future_order='masked').")
        indices = self._check_indices(indices, 'indices')
        batch, frames = indices.shape[:2]
        keep = max(1, int(keep_frames))
        history = indices
        if frames <= keep or probability <= 0:
            return history
        table = self.embedding.prefix_table()
        for _ in range(int(rounds)):
            if self.decode_order == 'parallel':
                context, _ = self.trunk(self._stream(history[:, :-1], table), first_output=1)
                decoded = self._decode_parallel(context.transpose(1, 2).flatten(0, 1), table, float(temperature))
                decoded = decoded.tokens.unflatten(0, (batch, frames - 1))
            else:
                decoded = _choose(self._logits(indices, 1, history).movedim(3, 1), float(temperature))
            replace = torch.rand(batch, frames - 1, 1, 1, 1, device=indices.device) < probability
            replace[:, :keep - 1] = False
            history = torch.cat([indices[:, :1], torch.where(replace, decoded, history[:, 1:])], dim=1)
        return history

    @torch.no_grad()
    def predict(self, context: torch.Tensor, num_future: int, temperature: float = 0.0, samples: int = 1,
                steps: int = 1, probabilities: bool = False):
        """context (B, T_in, L, h, w) -> future indices (B * samples, num_future, L, h, w) int64.

        The rollout order decodes frame by frame; the trunk runs once per frame on the newest frame only (its
        causal convs and attention keep their history), and the head decodes the frame in the prior's order:
        'parallel' in L passes over the whole frame, 'raster' position by position with the incremental
        PixelCNN of `RasterHead`. The masked order decodes every future frame at once in `steps` refinements
        (:meth:`_predict_masked`; `steps` is read by it alone). temperature 0 takes the argmax, > 0 samples
        from softmax(logits / temperature).

        With `samples` = N > 1 it decodes N predictions of every clip (clip b's at rows b * N ... b * N + N - 1,
        the order of ``context.repeat_interleave(N, dim=0)``, whose predict this equals, random draws
        included). The trunk's pass over the context depends on the context alone, so it runs once per clip
        and its state is shared by the clip's N predictions; only what depends on the draws runs N times.

        With `probabilities` (sampling, rollout order) it returns the pair (indices, distributions), the latter
        (B * samples, num_future, L, M, h, w): softmax(logits / temperature) of every token given the tokens
        decoded before it, i.e. the distribution each token was drawn from. The expected codewords under them
        (:meth:`HRVQVAE.decode_weighted`) are what the drawn codewords average to, given the drawn parents.
        """
        if int(num_future) < 1:
            raise ValueError(f"num_future must be >= 1, got {num_future}.")
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}.")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}.")
        if probabilities and (temperature <= 0 or self.future_order == 'masked'):
            raise ValueError("STPixelCNN.predict: probabilities are those of the sampled rollout order; they need "
                             f"temperature > 0 and future_order='rollout' (got {temperature} and "
                             f"{self.future_order!r}).")
        context = self._check_indices(context, 'context', extra_frames=int(num_future))
        table = self.embedding.prefix_table()
        if self.future_order == 'masked':
            return self._predict_masked(context, int(num_future), table, float(temperature), samples, steps)
        frame_context, state = self.trunk(self._stream(context, table), first_output=context.shape[1])
        if samples > 1:
            frame_context, state = frame_context.repeat_interleave(samples, dim=0), state.repeat_interleave(samples)
        decode = self._decode_parallel if self.decode_order == 'parallel' else self._decode_raster
        frames = []
        for step in range(int(num_future)):
            frame = decode(frame_context[:, :, -1], table, float(temperature), keep_probabilities=probabilities)
            frames.append(frame)
            if step + 1 < num_future:
                frame_context, state = self.trunk(frame.embedding[:, :, None], state)
        future = torch.stack([frame.tokens for frame in frames], dim=1)
        if probabilities:
            return future, torch.stack([frame.probabilities for frame in frames], dim=1)
        return future

    def _predict_masked(self, context: torch.Tensor, num_future: int, table: torch.Tensor, temperature: float,
                        samples: int, steps: int) -> torch.Tensor:
        """The masked order's decoding: context (B, T_in, L, h, w) -> future (B * samples, F, L, h, w).

        MaskGIT's iterative decoding over the F future frames' positions: all hidden at first; in refinement
        s = 1..steps every future frame is decoded at once (layer by layer, the shown positions kept), and the
        positions still hidden are then cut to a fraction cos(pi s / (2 steps)) of all, keeping the ones whose
        decoded path the prior gave the highest probability. The last refinement keeps every position, so one
        step predicts each future frame from the inputs alone.
        """
        batch, num_context, _, height, width = context.shape
        rows = batch * samples
        tokens = context.new_zeros(rows, num_future, self.num_layers, height, width)
        shown = torch.zeros(rows, num_future, height, width, dtype=torch.bool, device=context.device)
        inputs_shown = torch.ones(rows, num_context, height, width, dtype=torch.bool, device=context.device)
        positions = num_future * height * width
        for step in range(steps):
            if step == 0:
                # nothing of the future is shown yet, so the contexts depend on the inputs alone: once per clip
                clip = torch.cat([context, tokens[::samples]], dim=1)
                visible = torch.cat([inputs_shown[::samples], shown[::samples]], dim=1)
            else:
                clip = torch.cat([context.repeat_interleave(samples, dim=0), tokens], dim=1)
                visible = torch.cat([inputs_shown, shown], dim=1)
            frame_context, _ = self.trunk(self._stream(clip[:, :-1], table, visible[:, :-1]), first_output=num_context)
            if step == 0 and samples > 1:
                frame_context = frame_context.repeat_interleave(samples, dim=0)
            decoded, _, log_prob, _ = self._decode_parallel(frame_context.transpose(1, 2).flatten(0, 1), table,
                                                            temperature, forced=tokens.flatten(0, 1),
                                                            forced_where=shown.flatten(0, 1))
            decoded = decoded.unflatten(0, (rows, num_future))
            if step + 1 < steps:
                still_hidden = int(positions * math.cos(0.5 * math.pi * (step + 1) / steps))
                confidence = log_prob.unflatten(0, (rows, num_future)).masked_fill(shown, float('inf')).flatten(1)
                keep = confidence.argsort(dim=1, descending=True)[:, :positions - still_hidden]
                shown = torch.zeros_like(shown).flatten(1).scatter(1, keep, torch.ones_like(keep, dtype=torch.bool))
                shown = shown.view_as(tokens[:, :, 0])
                tokens = torch.where(shown[:, :, None], decoded, tokens)
        return decoded

    def _decode_parallel(self, context: torch.Tensor, table: torch.Tensor, temperature: float,
                         forced: Optional[torch.Tensor] = None, forced_where: Optional[torch.Tensor] = None,
                         keep_probabilities: bool = False) -> DecodedFrame:
        """context (B, E, h, w) -> the decoded frame; its log-probabilities only with `forced` (the rollout
        order does not rank positions), its distributions only with `keep_probabilities`.

        With `forced` tokens (B, L, h, w) the positions where `forced_where` (B, h, w) is True take those
        tokens instead of decoded ones (the masked order's shown positions).
        """
        known = torch.zeros_like(context)
        path = torch.zeros(context.shape[0], *context.shape[2:], dtype=torch.long, device=context.device)
        log_prob = None if forced is None else context.new_zeros(context.shape[0], *context.shape[2:])
        tokens, distributions = [], []
        for layer in range(self.num_layers):
            features = self.head.layer_features(known + context, layer)
            logits = self.decoder.layer_logits(features + known, layer)
            token = _choose(logits, temperature)
            if keep_probabilities:
                distributions.append(torch.softmax(logits.float() / temperature, dim=1))
            if forced is not None:
                token = torch.where(forced_where, forced[:, layer], token)
                log_prob = log_prob + logits.log_softmax(dim=1).gather(1, token[:, None])[:, 0]
            path = path * self.codebook_size + token
            known = self.embedding.row(layer + 1, path, table).permute(0, 3, 1, 2)
            tokens.append(token)
        return DecodedFrame(torch.stack(tokens, dim=1), known, log_prob,
                            torch.stack(distributions, dim=1) if keep_probabilities else None)

    def _decode_raster(self, context: torch.Tensor, table: torch.Tensor, temperature: float,
                       keep_probabilities: bool = False) -> DecodedFrame:
        """context (B, E, h, w) -> the decoded frame (its distributions only with `keep_probabilities`)."""
        batch, _, height, width = context.shape
        frame = torch.zeros_like(context)
        tokens = torch.zeros(batch, self.num_layers, height, width, dtype=torch.long, device=context.device)
        distributions = (torch.zeros(batch, self.num_layers, self.codebook_size, height, width,
                                     device=context.device) if keep_probabilities else None)
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
                    if keep_probabilities:
                        distributions[:, layer, :, row, col] = torch.softmax(logits.float() / temperature, dim=1)
                    path = path * self.codebook_size + token
                    known = self.embedding.row(layer + 1, path, table)
                    tokens[:, layer, row, col] = token
                frame[:, :, row, col] = known
        return DecodedFrame(tokens, frame, None, distributions)
