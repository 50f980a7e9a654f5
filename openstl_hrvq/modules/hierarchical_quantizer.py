"""Tree-structured hierarchical residual vector quantizer (HR-VQ, S-HR-VQVAE paper §4.1, eq. 4-5).

Layer 1 holds one codebook of ``M`` codewords. Layer ``i`` holds ``M**(i-1)`` codebooks of ``M``
codewords each, one per codeword of layer ``i-1``: at every position, layer ``i`` searches only the
``M`` children of the codeword its parent layer chose there, and quantizes the residual that the
coarser layers left, ``xi^{i-1} = xi^{i-2} - e^{i-1}`` with ``xi^0 = z``. The path of local indices
``(k_1, ..., k_L)`` names one leaf of an ``M**L`` tree; its global index at layer ``i`` is
``g_i = g_{i-1} * M + k_i``. The quantized latent is ``e_C = e^1 + ... + e^L``.

All codebooks of a layer live in one tensor of shape ``(M**i, M, D)`` (``i`` 0-based), so the
children of every position's parent are gathered and compared with batched ops.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from openstl_hrvq.distributed_utils import world_size

logger = logging.getLogger(__name__)

__all__ = ['HierarchicalResidualQuantizer', 'QuantizerOutput']


@dataclass
class QuantizerOutput:
    """Result of :meth:`HierarchicalResidualQuantizer.forward`.

    Attributes:
        quantized: ``(B, D, h, w)`` e_C with a straight-through gradient to the input z.
        indices: ``(B, L, h, w)`` int64 local indices ``k_i`` in ``[0, M)``, coarse layer first.
        loss: scalar, the commitment / codebook terms of paper eq. 4-5.
        perplexity: ``(L,)`` perplexity of each layer's global-index distribution in this batch.
        usage: ``(L,)`` fraction of each layer's ``M**(i+1)`` codewords used in this batch.
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
    perplexity: Tensor
    usage: Tensor


@dataclass
class _TreeAssignment:
    """Per-layer lists (length L) produced by one descent of the tree; flat positions N = B*h*w."""

    residuals: list  # (N, D) float32 xi^{i-1}, the vector layer i quantized (graph kept)
    local: list      # (N,) int64 k_i
    global_: list    # (N,) int64 g_i
    codewords: list  # (N, D) float32 e^i (graph to the codebook kept)


@torch.no_grad()
def _nearest_child(residual: Tensor, parent: Tensor, book: Tensor) -> Tensor:
    """Tree selection at one layer: the local index ``(N,)`` of the child of each vector's parent nearest to it.

    Args:
        residual: ``(N, D)`` residuals reaching the layer; parent: ``(N,)`` their parent's global index;
        book: ``(P, M, D)`` the layer's codebooks, one per parent. Only the parent's own M children are
            compared, which is what makes the quantizer a tree rather than a flat residual VQ.
    """
    return (residual.unsqueeze(1) - book[parent]).pow(2).sum(-1).argmin(1)


def _all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over DDP ranks in place (no-op outside torch.distributed)."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _agree_across_ranks(candidates: Tensor, available: Tensor) -> tuple[Tensor, Tensor]:
    """Make every rank use the same candidate vectors.

    Args:
        candidates: ``(P, M, D)`` this rank's candidate codewords for the children of each parent.
        available: ``(P,)`` bool, whether this rank saw residuals routed to that parent.

    Returns:
        The candidates of the first rank that has them for each parent (rank 0's when none has),
        ``(P, M, D)``, and ``(P,)`` bool whether any rank had them.
    """
    world = world_size()
    if world == 1:
        return candidates, available
    gathered = [torch.empty_like(candidates) for _ in range(world)]
    dist.all_gather(gathered, candidates.contiguous())
    flags = [torch.empty_like(available, dtype=torch.float32) for _ in range(world)]
    dist.all_gather(flags, available.float())
    stacked, flag = torch.stack(gathered), torch.stack(flags)  # (W, P, M, D), (W, P)
    source = flag.argmax(0)  # first rank with members; 0 when no rank has any
    parents = torch.arange(candidates.shape[0], device=candidates.device)
    return stacked[source, parents], flag.amax(0) > 0


class HierarchicalResidualQuantizer(nn.Module):
    """Tree of codebooks quantizing residuals layer by layer (S-HR-VQVAE paper eq. 4-5).

    Args:
        num_layers: L, the depth of the tree.
        codebook_size: M, the number of children of every node (codewords per codebook).
        dim: D, the latent channel count.
        beta: beta_0, weight of the commitment term ``||sg[e_C] - z||^2`` of eq. 4.
        layer_betas: beta_i of each layer's commitment term ``||sg[e^i] - xi^{i-1}||^2`` (eq. 5);
            defaults to ``beta`` for every layer.
        ema: learn codewords by exponential moving averages of their assigned residuals (default);
            with ``False`` they are ``nn.Parameter``s trained by the codebook terms of the loss.
        decay: EMA decay.
        eps: Laplace-smoothing constant of the EMA counts.
        dead_code_threshold: a codeword whose EMA assignment count (per training step) falls below
            this is restarted from a residual routed to its own parent; 0 disables restarts.
        init_noise: data-dependent initialisation (and restarts) copy residuals plus Gaussian noise
            of this many standard deviations of the layer's residuals, so duplicates separate.
    """

    def __init__(self, num_layers: int, codebook_size: int, dim: int, beta: float = 0.25,
                 layer_betas: Optional[Sequence[float]] = None, ema: bool = True, decay: float = 0.99,
                 eps: float = 1e-5, dead_code_threshold: float = 1.0, init_noise: float = 0.01):
        super().__init__()
        if num_layers < 1 or codebook_size < 2 or dim < 1:
            raise ValueError(
                f'HierarchicalResidualQuantizer needs num_layers >= 1, codebook_size >= 2 and dim >= 1; '
                f'got {num_layers}, {codebook_size}, {dim}.')
        if layer_betas is None:
            layer_betas = [beta] * num_layers
        if len(layer_betas) != num_layers:
            raise ValueError(f'layer_betas has {len(layer_betas)} entries; give one per layer ({num_layers}).')
        self.num_layers = num_layers
        self.codebook_size = codebook_size
        self.dim = dim
        self.beta = float(beta)
        self.layer_betas = [float(b) for b in layer_betas]
        self.ema = ema
        self.decay = decay
        self.eps = eps
        self.dead_code_threshold = dead_code_threshold
        self.init_noise = init_noise

        bound = 1.0 / codebook_size
        self.codebooks = nn.ParameterList()
        for layer in range(num_layers):
            shape = (codebook_size ** layer, codebook_size, dim)
            book = torch.empty(shape).uniform_(-bound, bound)
            self.codebooks.append(nn.Parameter(book, requires_grad=not ema))
            # Usage counts are tracked in both modes: dead-code detection needs them.
            self.register_buffer(f'cluster_size_{layer}', torch.ones(shape[:2]))
            self.register_buffer(f'embed_sum_{layer}', book.clone())
        self.register_buffer('initialized', torch.tensor(False))

    def _cluster_size(self, layer: int) -> Tensor:
        return getattr(self, f'cluster_size_{layer}')

    def _embed_sum(self, layer: int) -> Tensor:
        return getattr(self, f'embed_sum_{layer}')

    def codewords(self, layer: int) -> Tensor:
        """Flat codeword table of ``layer`` (0-based): ``(M**(layer+1), D)``, row ``g_parent*M + k``."""
        return self.codebooks[layer].reshape(-1, self.dim)

    def _check_latent(self, z: Tensor) -> None:
        if z.dim() != 4 or z.shape[1] != self.dim:
            raise ValueError(
                f'Expected a latent of shape (B, {self.dim}, h, w), got {tuple(z.shape)}; '
                f'check that the encoder outputs dim={self.dim} channels.')

    def _descend(self, flat: Tensor) -> _TreeAssignment:
        """Route every vector down the tree.

        Args:
            flat: ``(N, D)`` float32 latent vectors z.
        """
        M = self.codebook_size
        tree = _TreeAssignment([], [], [], [])
        residual = flat
        parent = torch.zeros(flat.shape[0], dtype=torch.long, device=flat.device)
        for layer in range(self.num_layers):
            book = self.codebooks[layer].float()
            local = _nearest_child(residual.detach(), parent, book.detach())
            global_ = parent * M + local
            codeword = book.reshape(-1, self.dim)[global_]
            tree.residuals.append(residual)
            tree.local.append(local)
            tree.global_.append(global_)
            tree.codewords.append(codeword)
            # The residual handed down subtracts the *detached* codeword, so xi^i = z - sum sg[e^j]
            # has an identity Jacobian w.r.t. z: every layer's commitment term sends gradient to the
            # encoder, and a layer's codebook learns only from its own codebook term. Subtracting the
            # straight-through output instead (xi - (xi + sg[e - xi]) = -sg[e - xi]) would give the
            # finer layers' residuals zero gradient w.r.t. z.
            residual = residual - codeword.detach()
            parent = global_
        return tree

    def _loss(self, flat: Tensor, tree: _TreeAssignment) -> tuple[Tensor, Tensor]:
        """Eq. 4-5 VQ terms; returns (loss, e_C of shape (N, D)).

        With EMA codebooks the codebook terms ``||sg[.] - e||^2`` are left out: they train nothing
        (the EMA update replaces them) and would only shift the logged loss.
        """
        loss = flat.new_zeros(())
        e_c = torch.zeros_like(flat)
        for residual, codeword, beta in zip(tree.residuals, tree.codewords, self.layer_betas):
            loss = loss + beta * F.mse_loss(residual, codeword.detach())
            if not self.ema:
                loss = loss + F.mse_loss(codeword, residual.detach())
            e_c = e_c + codeword
        loss = loss + self.beta * F.mse_loss(flat, e_c.detach())
        if not self.ema:
            loss = loss + F.mse_loss(e_c, flat.detach())
        return loss, e_c

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z`` of shape ``(B, D, h, w)``; see :class:`QuantizerOutput`.

        In training mode the first call initialises the codebooks from the data, and every call
        updates the EMA statistics (all-reduced under DDP) and restarts dead codewords.
        """
        self._check_latent(z)
        B, D, h, w = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, D)
            if self.training and not bool(self.initialized):
                self._initialise(flat.detach())
            tree = self._descend(flat)
            loss, e_c = self._loss(flat, tree)
            counts = [torch.bincount(g, minlength=self.codebook_size ** (i + 1)).float()
                      for i, g in enumerate(tree.global_)]
            if self.training:
                counts = self._update_codebooks(tree, counts)
            quantized = flat + (e_c - flat).detach()
        quantized = quantized.reshape(B, h, w, D).permute(0, 3, 1, 2).to(z.dtype)
        indices = torch.stack(tree.local, 1).reshape(B, h, w, -1).permute(0, 3, 1, 2)
        perplexity, usage = self._usage_statistics(counts)
        return QuantizerOutput(quantized=quantized, indices=indices, loss=loss,
                               perplexity=perplexity, usage=usage)

    @torch.no_grad()
    def encode(self, z: Tensor) -> Tensor:
        """Local indices ``(B, L, h, w)`` int64 of ``z`` ``(B, D, h, w)``; touches no statistics."""
        self._check_latent(z)
        B, D, h, w = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, D)
            tree = self._descend(flat)
        return torch.stack(tree.local, 1).reshape(B, h, w, -1).permute(0, 3, 1, 2)

    def _check_indices(self, indices: Tensor) -> None:
        """Validates local indices ``(B, L, h, w)``: one integer map per layer, values in [0, M)."""
        if indices.dim() != 4 or indices.shape[1] != self.num_layers:
            raise ValueError(
                f'Expected indices of shape (B, {self.num_layers}, h, w), got {tuple(indices.shape)}; '
                'pass one local index map per quantizer layer.')
        if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f'Expected integer indices, got {indices.dtype}; convert with .long().')
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f'Indices must be local codeword indices in [0, {self.codebook_size}); got values in '
                f'[{int(indices.min())}, {int(indices.max())}].')

    def partial_sums(self, indices: Tensor) -> Tensor:
        """Cumulative reconstructions e^1, e^1+e^2, ... : ``(B, L, h, w)`` -> ``(B, L, D, h, w)``."""
        self._check_indices(indices)
        B, L, h, w = indices.shape
        local = indices.long().permute(1, 0, 2, 3).reshape(L, -1)  # (L, N)
        global_ = torch.zeros_like(local[0])
        total = 0
        sums = []
        for layer in range(L):
            global_ = global_ * self.codebook_size + local[layer]
            total = total + self.codewords(layer).float()[global_]
            sums.append(total)
        stacked = torch.stack(sums, 1)  # (N, L, D)
        return stacked.reshape(B, h, w, L, self.dim).permute(0, 3, 4, 1, 2)

    def decode_indices(self, indices: Tensor) -> Tensor:
        """e_C ``(B, D, h, w)`` of local indices ``(B, L, h, w)``, following each path down the tree."""
        return self.partial_sums(indices)[:, -1]

    def decode_weighted(self, indices: Tensor, weights: Tensor) -> Tensor:
        """e_C ``(B, D, h, w)`` as weighted sums over children: indices ``(B, L, h, w)``, weights ``(B, L, M, h, w)``.

        At layer i each position's parent is the node that ``indices`` chose above it, and the M children of
        that node are summed with ``weights[:, i]``. One-hot weights of ``indices`` give :meth:`decode_indices`;
        straight-through weights (one-hot forward, softmax backward) hand the decoder the chosen path while
        the reconstruction's gradient reaches the probabilities that chose it (eq. 9's path to the prior).
        """
        self._check_indices(indices)
        B, L, h, w = indices.shape
        if weights.shape != (B, L, self.codebook_size, h, w):
            raise ValueError(f'Expected weights of shape {(B, L, self.codebook_size, h, w)} for indices of shape '
                             f'{tuple(indices.shape)}, got {tuple(weights.shape)}.')
        local = indices.long().permute(1, 0, 2, 3).reshape(L, -1)                             # (L, N)
        weights = weights.permute(1, 0, 3, 4, 2).reshape(L, -1, self.codebook_size)           # (L, N, M)
        parent = torch.zeros_like(local[0])
        total = 0
        for layer in range(L):
            children = self.codebooks[layer].float()[parent]                                  # (N, M, D)
            total = total + torch.einsum('nm,nmd->nd', weights[layer].float(), children)
            parent = parent * self.codebook_size + local[layer]
        return total.reshape(B, h, w, self.dim).permute(0, 3, 1, 2)

    @staticmethod
    def _usage_statistics(counts: list) -> tuple[Tensor, Tensor]:
        perplexity, usage = [], []
        for count in counts:
            probability = count / count.sum().clamp_min(1.0)
            entropy = -(probability * probability.clamp_min(1e-10).log()).sum()
            perplexity.append(entropy.exp())
            usage.append((count > 0).float().mean())
        return torch.stack(perplexity), torch.stack(usage)

    def _routed_samples(self, residual: Tensor, parent: Tensor, num_parents: int) -> tuple[Tensor, Tensor]:
        """Draw, for every parent, M residuals routed to it (cycled when it has fewer), plus noise.

        Args:
            residual: ``(N, D)`` residuals reaching the layer; parent: ``(N,)`` their parent's global index.

        Returns:
            ``(P, M, D)`` candidates and ``(P,)`` bool whether any residual reached that parent.
        """
        M = self.codebook_size
        members = torch.bincount(parent, minlength=num_parents)
        # Sorting by parent plus a uniform key groups residuals by parent in random order within.
        shuffled = torch.argsort(parent.double() + torch.rand(parent.shape, dtype=torch.float64,
                                                              device=parent.device))
        start = members.cumsum(0) - members
        offset = torch.arange(M, device=parent.device)[None, :] % members.clamp_min(1)[:, None]
        position = (start[:, None] + offset).clamp_max(parent.shape[0] - 1)  # (P, M)
        candidates = residual[shuffled[position]]
        scale = self.init_noise * residual.std().clamp_min(1e-8)
        return candidates + scale * torch.randn_like(candidates), members > 0

    @torch.no_grad()
    def _initialise(self, flat: Tensor) -> None:
        """Data-dependent initialisation, layer by layer, each subtree from the residuals routed to it.

        Args:
            flat: ``(N, D)`` float32 latent vectors of the first training batch.
        """
        residual = flat
        parent = torch.zeros(flat.shape[0], dtype=torch.long, device=flat.device)
        M = self.codebook_size
        for layer in range(self.num_layers):
            num_parents = M ** layer
            candidates, available = self._routed_samples(residual, parent, num_parents)
            # Parents no residual reached yet start from random residuals; restarts refine them later.
            fallback = residual[torch.randint(residual.shape[0], (num_parents, M), device=flat.device)]
            candidates = torch.where(available[:, None, None], candidates, fallback)
            candidates, _ = _agree_across_ranks(candidates, available)
            book = self.codebooks[layer]
            book.data.copy_(candidates)
            self._cluster_size(layer).fill_(1.0)
            self._embed_sum(layer).copy_(candidates)
            local = _nearest_child(residual, parent, candidates)
            residual = residual - candidates[parent, local]
            parent = parent * M + local
        self.initialized.fill_(True)
        logger.debug('Initialised %d codebook layers from %d latent vectors.', self.num_layers, flat.shape[0])

    @torch.no_grad()
    def _update_codebooks(self, tree: _TreeAssignment, counts: list) -> list:
        """EMA update of counts / sums (and codewords when ``ema``), then dead-code restarts.

        Args:
            counts: per layer ``(M**(i+1),)`` assignment counts of this rank's batch.

        Returns:
            The counts summed over DDP ranks.
        """
        M, D = self.codebook_size, self.dim
        reduced = []
        for layer in range(self.num_layers):
            residual = tree.residuals[layer].detach()
            global_ = tree.global_[layer]
            sums = torch.zeros(counts[layer].shape[0], D, device=residual.device).index_add_(0, global_, residual)
            stats = _all_reduce_sum(torch.cat([counts[layer][:, None], sums], 1))
            count, sums = stats[:, 0], stats[:, 1:]
            reduced.append(count)
            cluster_size, embed_sum = self._cluster_size(layer), self._embed_sum(layer)
            cluster_size.mul_(self.decay).add_(count.view(-1, M), alpha=1 - self.decay)
            embed_sum.mul_(self.decay).add_(sums.view(-1, M, D), alpha=1 - self.decay)
            book = self.codebooks[layer]
            if self.ema:
                # Laplace smoothing within each parent's codebook keeps rarely used children finite.
                total = cluster_size.sum(-1, keepdim=True)
                smoothed = (cluster_size + self.eps) / (total + M * self.eps) * total
                updated = embed_sum / smoothed.clamp_min(1e-12).unsqueeze(-1)
                book.data.copy_(torch.where((smoothed > 1e-12).unsqueeze(-1), updated, book.data))
            if self.dead_code_threshold > 0:
                self._restart_dead(layer, residual, global_ // M)
        return reduced

    def _restart_dead(self, layer: int, residual: Tensor, parent: Tensor) -> None:
        """Move dead codewords onto residuals routed to their own parent; reset their EMA statistics.

        The dead mask comes from all-reduced statistics, so every rank takes the same branch.
        """
        cluster_size = self._cluster_size(layer)
        dead = cluster_size < self.dead_code_threshold  # (P, M)
        if not bool(dead.any()):
            return
        candidates, available = self._routed_samples(residual, parent, cluster_size.shape[0])
        candidates, available = _agree_across_ranks(candidates, available)
        revive = dead & available[:, None]
        book = self.codebooks[layer]
        book.data[revive] = candidates[revive]
        # One pseudo-assignment of the new vector, so the codeword starts where it was placed.
        cluster_size[revive] = 1.0
        self._embed_sum(layer)[revive] = candidates[revive]
