"""Tree-structured HR-VQ quantizer: tree search, decoding, EMA, restarts, gradients, statistics."""
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from openstl_hrvq.modules import HierarchicalResidualQuantizer

REPO_ROOT = Path(__file__).resolve().parents[1]


def random_tree(num_layers=3, codebook_size=3, dim=4, seed=0, **kwargs):
    """A quantizer in eval mode whose codebooks are independent random draws (no data init)."""
    torch.manual_seed(seed)
    q = HierarchicalResidualQuantizer(num_layers, codebook_size, dim, **kwargs)
    with torch.no_grad():
        for book in q.codebooks:
            book.copy_(torch.randn_like(book))
    return q.eval()


def loop_descent(q, vector):
    """Greedy tree search with plain Python loops over positions' children: (local indices, e_C)."""
    M = q.codebook_size
    residual = vector.clone()
    parent, path, total = 0, [], torch.zeros_like(vector)
    for layer in range(q.num_layers):
        table = q.codewords(layer).detach()
        best, best_distance = None, float('inf')
        for k in range(M):
            distance = float(((residual - table[parent * M + k]) ** 2).sum())
            if distance < best_distance:
                best, best_distance = k, distance
        chosen = table[parent * M + best]
        path.append(best)
        total = total + chosen
        residual = residual - chosen
        parent = parent * M + best
    return path, total


def test_codebook_shapes_follow_the_tree():
    q = HierarchicalResidualQuantizer(3, 4, 5)
    assert [tuple(q.codewords(i).shape) for i in range(3)] == [(4, 5), (16, 5), (64, 5)]
    assert [tuple(book.shape) for book in q.codebooks] == [(1, 4, 5), (4, 4, 5), (16, 4, 5)]


def test_indices_match_independent_tree_search():
    q = random_tree(num_layers=3, codebook_size=3, dim=4)
    z = torch.randn(2, 4, 3, 5)
    out = q(z)
    assert out.indices.dtype == torch.int64 and out.indices.shape == (2, 3, 3, 5)
    for b, y, x in itertools.product(range(2), range(3), range(5)):
        path, total = loop_descent(q, z[b, :, y, x])
        assert out.indices[b, :, y, x].tolist() == path
        torch.testing.assert_close(out.quantized[b, :, y, x], total, atol=1e-5, rtol=1e-5)


def test_parent_choice_selects_the_codebook_searched():
    # Two parents far apart whose child codebooks hold the same two vectors in opposite order: the
    # same residual gets a different local index under each parent. A flat residual VQ (one shared
    # codebook per layer) would give both positions the same index.
    q = HierarchicalResidualQuantizer(2, 2, 1).eval()
    with torch.no_grad():
        q.codebooks[0].copy_(torch.tensor([[[0.0], [100.0]]]))
        q.codebooks[1].copy_(torch.tensor([[[1.0], [-1.0]], [[-1.0], [1.0]]]))
    z = torch.tensor([0.9, 100.9]).view(1, 1, 1, 2)
    out = q(z)
    assert out.indices[0, :, 0, 0].tolist() == [0, 0]
    assert out.indices[0, :, 0, 1].tolist() == [1, 1]
    torch.testing.assert_close(out.quantized.flatten(), torch.tensor([1.0, 101.0]))


def test_changing_a_parent_index_changes_the_decoded_child():
    q = random_tree(num_layers=3, codebook_size=4, dim=3)
    indices = torch.randint(0, 4, (1, 3, 2, 2))
    moved = indices.clone()
    moved[:, 0] = (moved[:, 0] + 1) % 4
    child_before = q.partial_sums(indices)[:, 1] - q.partial_sums(indices)[:, 0]
    child_after = q.partial_sums(moved)[:, 1] - q.partial_sums(moved)[:, 0]
    # Same local child index, different parent: the child codeword comes from another codebook.
    assert (child_before - child_after).abs().amax(1).min() > 0


def test_decode_indices_reproduces_forward_value_and_partial_sums():
    q = random_tree(num_layers=3, codebook_size=4, dim=4)
    z = torch.randn(3, 4, 6, 6)
    out = q(z)
    torch.testing.assert_close(q.decode_indices(out.indices), out.quantized, atol=1e-6, rtol=1e-6)
    partial = q.partial_sums(out.indices)
    assert partial.shape == (3, 3, 4, 6, 6)
    torch.testing.assert_close(partial[:, -1], out.quantized, atol=1e-6, rtol=1e-6)
    first = q.codewords(0).detach()[out.indices[:, 0]].permute(0, 3, 1, 2)
    torch.testing.assert_close(partial[:, 0], first)


def test_decode_weighted_sums_the_children_of_the_chosen_parents():
    q = random_tree(num_layers=3, codebook_size=4, dim=4)
    indices = q(torch.randn(2, 4, 5, 5)).indices
    one_hot = torch.nn.functional.one_hot(indices, 4).movedim(-1, 2).float()     # (B, L, M, h, w)
    torch.testing.assert_close(q.decode_weighted(indices, one_hot), q.decode_indices(indices))
    # uniform weights at the last layer average the 4 children of the parent chosen above it
    weights = one_hot.clone()
    weights[:, 2] = 0.25
    parent = (indices[:, 0] * 4 + indices[:, 1]).flatten()                      # global index at layer 2
    children_mean = q.codebooks[2].detach()[parent].mean(dim=1).reshape(2, 5, 5, 4).permute(0, 3, 1, 2)
    expected = q.partial_sums(indices)[:, 1] + children_mean
    torch.testing.assert_close(q.decode_weighted(indices, weights), expected)
    with pytest.raises(ValueError, match='weights of shape'):
        q.decode_weighted(indices, one_hot[:, :2])


def test_decode_indices_rejects_bad_indices():
    q = random_tree(num_layers=3, codebook_size=4, dim=4)
    with pytest.raises(ValueError, match='shape'):
        q.decode_indices(torch.zeros(1, 2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\[0, 4\)'):
        q.decode_indices(torch.full((1, 3, 4, 4), 4, dtype=torch.long))
    with pytest.raises(ValueError, match='dim=4'):
        q(torch.randn(1, 3, 4, 4))


def squared_distances(a, b):
    """Exact pairwise squared distances (cdist's matrix-product form loses the zeros this test looks for)."""
    return (a[:, None] - b[None]).pow(2).sum(-1)


def test_data_dependent_init_places_children_on_their_parents_residuals():
    torch.manual_seed(0)
    q = HierarchicalResidualQuantizer(2, 4, 2, init_noise=0.0, dead_code_threshold=0.0)
    z = torch.randn(4, 2, 8, 8)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    with torch.no_grad():
        q._initialise(flat)
    assert bool(q.initialized)
    roots = q.codewords(0)
    assert torch.cdist(roots, roots).add(torch.eye(4) * 1e9).min() > 0          # distinct codewords
    assert (squared_distances(roots, flat).min(dim=1).values < 1e-10).all()      # each is a data vector
    # every child codeword is a residual of a vector routed to its own parent (not of any other parent's)
    parent = torch.cdist(flat, roots).argmin(dim=1)
    residual = flat - roots[parent]
    checked = 0
    for node in range(4):
        own = residual[parent == node]
        if len(own) < 4:
            continue
        children = q.codebooks[1][node]
        assert (squared_distances(children, own).min(dim=1).values < 1e-10).all(), node
        checked += 1
    assert checked >= 2


def test_ema_moves_used_codewords_toward_their_residuals():
    torch.manual_seed(0)
    q = HierarchicalResidualQuantizer(2, 3, 2, decay=0.5, dead_code_threshold=0.0)
    z = torch.randn(2, 2, 8, 8)
    q.train()(z)  # initialises from the data
    before = [q.codewords(i).detach().clone() for i in range(2)]
    q.eval()
    out = q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    local = out.indices.permute(0, 2, 3, 1).reshape(-1, 2)
    global_ = [local[:, 0], local[:, 0] * 3 + local[:, 1]]
    residuals = [flat, flat - before[0][global_[0]]]
    q.train()(z)
    for layer in range(2):
        after = q.codewords(layer).detach()
        for g in range(after.shape[0]):
            assigned = residuals[layer][global_[layer] == g]
            if len(assigned) == 0:
                torch.testing.assert_close(after[g], before[layer][g], atol=1e-3, rtol=1e-3)
                continue
            target = assigned.mean(0)
            assert (before[layer][g] - target).norm() > 1e-3
            assert (after[g] - target).norm() < 0.9 * (before[layer][g] - target).norm()


def test_eval_mode_leaves_codebooks_untouched():
    q = random_tree(num_layers=2, codebook_size=4, dim=3)
    before = [book.detach().clone() for book in q.codebooks]
    q(torch.randn(2, 3, 4, 4))
    for book, old in zip(q.codebooks, before):
        assert torch.equal(book.detach(), old)
    assert not bool(q.initialized)


def test_dead_code_restart_revives_inside_its_parents_subtree():
    torch.manual_seed(0)
    q = HierarchicalResidualQuantizer(2, 4, 2, init_noise=0.0, dead_code_threshold=1e-3)
    z = torch.randn(4, 2, 8, 8)
    q.train()(z)
    with torch.no_grad():
        counts = torch.bincount(q.eval()(z).indices[:, 0].flatten(), minlength=4)
        # Two parents other than 0 (so an off-by-subtree bug shows); kill children 1..3 of each.
        parents = (1 + counts[1:].argsort(descending=True)[:2]).tolist()
        for parent in parents:
            q.codebooks[1][parent, 1:] = 1e3  # far from all data: never assigned
            q.cluster_size_1[parent, 1:] = 0.0
        layer0 = q.codewords(0).detach().clone()
    q.train()(z)  # residuals of this step are routed with layer0, the codebook before its EMA update
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    k0 = torch.cdist(flat, layer0).argmin(1)
    residuals = flat - layer0[k0]
    for parent in parents:
        for child in (1, 2, 3):
            revived = q.codebooks[1][parent, child].detach()
            matches = (residuals - revived).norm(dim=1) < 1e-5
            assert matches.any(), 'the revived codeword is not one of the residuals'
            assert (k0[matches] == parent).all(), 'the revived codeword came from another parent'
            assert q.cluster_size_1[parent, child] == 1.0  # EMA statistics reset to one pseudo-assignment
            torch.testing.assert_close(q.embed_sum_1[parent, child], revived)


def _one_hot_betas(layer, num_layers=3):
    return [1.0 if i == layer else 0.0 for i in range(num_layers)]


@pytest.mark.parametrize('layer', [0, 1, 2])
def test_every_layer_commitment_term_reaches_the_encoder(layer):
    q = random_tree(num_layers=3, codebook_size=4, dim=4, beta=0.0, layer_betas=_one_hot_betas(layer))
    z = torch.randn(2, 4, 4, 4, requires_grad=True)
    out = q(z)
    out.loss.backward()
    with torch.no_grad():
        partial = q.partial_sums(out.indices)
        coarser = partial[:, layer - 1] if layer > 0 else torch.zeros_like(z)
        residual = z - coarser
        codeword = partial[:, layer] - coarser
        expected = 2.0 * (residual - codeword) / z.numel()
    assert z.grad.abs().sum() > 0
    torch.testing.assert_close(z.grad, expected, atol=1e-7, rtol=1e-4)


def test_straight_through_passes_gradient_of_the_quantized_output():
    q = random_tree(num_layers=2, codebook_size=4, dim=3, beta=0.0, layer_betas=[0.0, 0.0])
    z = torch.randn(1, 3, 2, 2, requires_grad=True)
    q(z).quantized.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))


def test_gradient_mode_trains_codebooks_with_the_loss():
    q = random_tree(num_layers=2, codebook_size=4, dim=3, ema=False)
    assert all(book.requires_grad for book in q.codebooks)
    q(torch.randn(2, 3, 4, 4)).loss.backward()
    assert all(book.grad is not None and book.grad.abs().sum() > 0 for book in q.codebooks)
    ema = random_tree(num_layers=2, codebook_size=4, dim=3, ema=True)
    assert not any(book.requires_grad for book in ema.codebooks)


def test_usage_and_perplexity_of_every_leaf_once_and_of_one_leaf():
    torch.manual_seed(0)
    M, L = 3, 3
    q = HierarchicalResidualQuantizer(L, M, 2).eval()
    with torch.no_grad():
        # Siblings on a circle of radius 10**-layer, each codebook turned by a random angle: the
        # finer layers' sum stays below half the sibling spacing, so greedy search finds every leaf.
        for layer, book in enumerate(q.codebooks):
            angle = torch.rand(book.shape[0], 1) * 6.28 + torch.arange(M) * 6.2832 / M
            book.copy_(torch.stack([angle.cos(), angle.sin()], -1) * 10.0 ** -layer)
    leaves = torch.tensor(list(itertools.product(range(M), repeat=L)))  # (M**L, L)
    indices = leaves.T.reshape(1, L, 1, -1)
    z = q.decode_indices(indices)
    out = q(z)
    assert torch.equal(out.indices, indices)
    torch.testing.assert_close(out.perplexity, torch.tensor([3.0, 9.0, 27.0]))
    torch.testing.assert_close(out.usage, torch.ones(L))
    single = q(z[..., :1].expand(1, 2, 1, 5).contiguous())
    torch.testing.assert_close(single.perplexity, torch.ones(L))
    torch.testing.assert_close(single.usage, torch.tensor([1 / 3, 1 / 9, 1 / 27]))


def test_autocast_keeps_distances_in_float32():
    q = random_tree(num_layers=2, codebook_size=4, dim=4)
    z = torch.randn(2, 4, 4, 4)
    expected = q(z).indices
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = q(z.bfloat16())
    assert out.quantized.dtype == torch.bfloat16
    # bfloat16 input rounding may move a few near-ties; the search itself must run in float32.
    assert (out.indices == expected).float().mean() > 0.9
    assert out.loss.dtype == torch.float32


DDP_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    sys.modules['openstl'] = None  # hide OpenSTL: its registration import would dominate this test's time

    def worker(rank, init_file, out_file):
        from openstl_hrvq.modules import HierarchicalResidualQuantizer
        dist.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=2)
        torch.manual_seed(rank)  # different data, noise and init draws on each rank
        # Threshold 1: coarse codewords live on EMA updates, rare leaves get restarted.
        q = HierarchicalResidualQuantizer(3, 4, 3, dead_code_threshold=1.0).train()
        for _ in range(3):
            q(torch.randn(4, 3, 8, 8) * (rank + 1))
        torch.save([book.detach() for book in q.codebooks], out_file + str(rank))
        dist.destroy_process_group()

    if __name__ == '__main__':
        mp.spawn(worker, args=(sys.argv[1], sys.argv[2]), nprocs=2)
''')


def test_ddp_ranks_keep_identical_codebooks(tmp_path):
    script = tmp_path / 'ddp_quantizer.py'
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, str(script), str(tmp_path / 'init'), str(tmp_path / 'books')],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    rank0, rank1 = (torch.load(tmp_path / f'books{r}') for r in range(2))
    for a, b in zip(rank0, rank1):
        assert torch.equal(a, b)
