"""Path embeddings of the code tree for the ST-PixelCNN prior (S-HR-VQVAE paper §4.2).

A child index means nothing without its parent, so the prior embeds every token by its full path from the
root of the tree (see :class:`PathEmbedding`).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['PathEmbedding', 'MAX_PATH_ROWS']

#: The largest number of tree paths (rows of all embedding tables together) a prior embeds.
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
