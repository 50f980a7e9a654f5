"""How the codebook tree is used: perplexity and used fraction per layer and per subtree, dead subtrees.

Layer ``i`` (1-based) has ``M**i`` codewords in ``M**(i-1)`` codebooks; the codebook a position searches
at layer ``i`` is the one under the node its layer ``i-1`` codeword names (the parent), so each codebook
is the first level of the subtree below its parent. Counting the global indices ``g_i = g_{i-1} * M + k_i``
of encoded frames gives:

* per layer: perplexity ``exp(H)`` of the distribution over the layer's ``M**i`` codewords, and the
  fraction of them used at least once;
* per subtree (one per parent node): how often the parent was visited, how many of its ``M`` children
  were used and the perplexity among them. A subtree is *dead* when its parent is never visited: none of
  the ``M + M**2 + ...`` codewords below it can ever be chosen. Only maximal dead subtrees (a dead node
  under a visited parent) are counted per layer, so nothing is counted twice.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from openstl_hrvq.models import HRVQVAE


def global_indices(local: np.ndarray, codebook_size: int) -> np.ndarray:
    """Local indices ``(..., L, h, w)`` -> global indices of the same shape (``g_i = g_{i-1} * M + k_i``)."""
    local = np.asarray(local, dtype=np.int64)
    result = np.empty_like(local)
    running = np.zeros_like(local[..., 0, :, :])
    for layer in range(local.shape[-3]):
        running = running * codebook_size + local[..., layer, :, :]
        result[..., layer, :, :] = running
    return result


def perplexity(counts: np.ndarray) -> float:
    """``exp`` of the entropy of the distribution ``counts / counts.sum()`` (0 for no counts)."""
    total = counts.sum()
    if total == 0:
        return 0.0
    probability = counts[counts > 0] / total
    return float(np.exp(-(probability * np.log(probability)).sum()))


def layer_counts(local: np.ndarray, codebook_size: int) -> list[np.ndarray]:
    """How often each codeword of each layer was chosen: indices ``(N, L, h, w)`` -> ``L`` arrays ``(M**i,)``."""
    globals_ = global_indices(local, codebook_size)
    return [np.bincount(globals_[:, layer].reshape(-1), minlength=codebook_size ** (layer + 1))
            for layer in range(globals_.shape[1])]


def codebook_usage(local: np.ndarray, codebook_size: int) -> dict:
    """Usage statistics of indices ``(N, L, h, w)`` (local, coarse layer first).

    Returns:
        ``{'positions': N*h*w, 'layers': [...], 'subtrees': [...]}``. A layer row holds ``layer``,
        ``codewords``, ``used``, ``used_fraction``, ``perplexity``, ``codebooks``, ``dead_subtrees`` and
        ``dead_codewords`` (codewords below dead subtree roots). A subtree row holds ``layer`` (of the
        children), ``parent`` (global index at layer - 1, -1 for the root), ``visits``, ``children_used``,
        ``used_fraction``, ``perplexity``, ``dead`` and ``counts`` (per child; they sum to ``visits``).
    """
    M = codebook_size
    counts = layer_counts(local, M)
    positions = int(np.prod(np.asarray(local).shape)) // max(1, np.asarray(local).shape[1])
    num_layers = len(counts)
    layers, subtrees = [], []
    for layer, layer_count in enumerate(counts):
        parent_visits = counts[layer - 1] if layer else np.array([positions])
        children = layer_count.reshape(-1, M)  # one row per parent codebook
        for parent, (visits, child_counts) in enumerate(zip(parent_visits, children)):
            subtrees.append({'layer': layer + 1, 'parent': parent if layer else -1, 'visits': int(visits),
                             'children_used': int((child_counts > 0).sum()),
                             'used_fraction': float((child_counts > 0).mean()),
                             'perplexity': perplexity(child_counts), 'dead': bool(visits == 0),
                             'counts': child_counts.tolist()})
        if layer:
            visited_grandparent = np.repeat(counts[layer - 2] > 0, M) if layer > 1 else np.ones(M, bool)
            dead_roots = (counts[layer - 1] == 0) & visited_grandparent
        else:
            dead_roots = np.zeros(0, bool)
        # A dead root at layer i-1 loses M + M**2 + ... codewords in layers i..L.
        lost_per_root = sum(M ** depth for depth in range(1, num_layers - layer + 1))
        layers.append({'layer': layer + 1, 'codewords': M ** (layer + 1), 'used': int((layer_count > 0).sum()),
                       'used_fraction': float((layer_count > 0).mean()), 'perplexity': perplexity(layer_count),
                       'codebooks': M ** layer, 'dead_subtrees': int(dead_roots.sum()),
                       'dead_codewords': int(dead_roots.sum()) * lost_per_root})
    return {'positions': positions, 'codebook_size': M, 'layers': layers, 'subtrees': subtrees}


@torch.no_grad()
def encode_frames(vqvae: HRVQVAE, frames: np.ndarray, batch_size: int = 64, device: str = 'cpu') -> np.ndarray:
    """Local indices ``(N, L, h, w)`` of frames ``(N, C, H, W)``, encoded in batches."""
    parts = []
    for start in tqdm(range(0, len(frames), batch_size), desc='encoding frames', leave=False):
        batch = torch.as_tensor(frames[start:start + batch_size], dtype=torch.float32, device=device)
        parts.append(vqvae.encode(batch).cpu().numpy())
    return np.concatenate(parts)


def usage_markdown(usage: dict) -> str:
    """Per-layer table plus the list of dead subtrees."""
    lines = ['| Layer | Codewords | Used | Used fraction | Perplexity | Codebooks | Dead subtrees | Codewords lost |',
             '|---:|---:|---:|---:|---:|---:|---:|---:|']
    for row in usage['layers']:
        lines.append(f"| {row['layer']} | {row['codewords']} | {row['used']} | {row['used_fraction']:.3f} | "
                     f"{row['perplexity']:.2f} | {row['codebooks']} | {row['dead_subtrees']} | "
                     f"{row['dead_codewords']} |")
    dead = [row for row in usage['subtrees'] if row['dead']]
    lines.append('')
    lines.append(f"{usage['positions']} latent positions encoded; M = {usage['codebook_size']}. "
                 f"Codebooks never searched (dead subtrees, their parent unused): {len(dead)}"
                 + (': ' + ', '.join(f"layer {row['layer']} under node {row['parent']}" for row in dead[:20])
                    + (' ...' if len(dead) > 20 else '') if dead else '.'))
    return '\n'.join(lines)
