"""The paper's analyses: compression ratios, codebook usage, corruptions, per-layer maps, tools/analyze.py."""
import importlib.util
import json
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from openstl_hrvq.analysis import (DEFAULT_CONDITIONS, add_noise, codebook_usage, compression_ratio,
                                   compression_table, corrupt, fragment_blur, gaussian_blur, global_indices,
                                   layer_contributions, layer_reconstructions, load_trained_model, perplexity,
                                   sweep_markdown, sweep_rows)
from openstl_hrvq.metrics import snr_per_frame
from openstl_hrvq.models import SHRVQVAE_Model
from tests.helpers import TINY_MODEL, MovingSquares, load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config_path(name):
    return osp.join(REPO, 'configs', f'{name}.py')


def test_compression_ratio_of_the_paper_configurations():
    rows = {'/'.join(row['config'].split(osp.sep)[-2:]): row for row in compression_table(
        [config_path(name) for name in ('mmnist/shvqvae', 'mmnist/shvqvae_1layer', 'mmnist/shvqvae_6layer',
                                        'kth/shvqvae', 'kth/shvqvae_9layer')])}
    mmnist = rows['mmnist/shvqvae.py']
    assert mmnist['frame'] == [64, 64, 1] and mmnist['input_bits'] == 64 * 64 * 8
    assert mmnist['code_bits'] == 16 * 16 * 3 * 2 == 1536          # 3 layers of M = 4: 2 bits each
    assert mmnist['ratio'] == pytest.approx(32768 / 1536)
    assert mmnist['codewords_per_layer'] == [4, 16, 64] and mmnist['leaves'] == 64
    # Table 1's variants share one code size: 64 leaves per position whatever the depth.
    assert rows['mmnist/shvqvae_1layer.py']['code_bits'] == rows['mmnist/shvqvae_6layer.py']['code_bits'] == 1536
    assert rows['mmnist/shvqvae_6layer.py']['codewords_per_layer'] == [2, 4, 8, 16, 32, 64]
    kth = compression_ratio({'in_shape': [10, 1, 128, 128], 'vq_layers': 3, 'vq_codebook_size': 8})
    assert kth['code_bits'] == 32 * 32 * 3 * 3 and kth['ratio'] == pytest.approx(131072 / 9216)
    assert rows['kth/shvqvae_9layer.py']['code_bits'] == kth['code_bits']


def test_global_indices_follow_the_tree():
    local = np.array([3, 1, 2]).reshape(1, 3, 1, 1)
    assert global_indices(local, 4).ravel().tolist() == [3, 3 * 4 + 1, (3 * 4 + 1) * 4 + 2]


def test_codebook_usage_per_layer_and_subtree():
    M = 2
    # 6 positions, 2 layers: layer-1 codeword 1 is never chosen, so its codebook at layer 2 is dead.
    paths = [(0, 0), (0, 0), (0, 1), (0, 1), (0, 1), (0, 0)]
    local = np.array(paths).T.reshape(2, 1, 6).transpose(1, 0, 2)[:, :, None, :]   # (1, L=2, 1, 6)
    usage = codebook_usage(local, M)
    assert usage['positions'] == 6
    first, second = usage['layers']
    assert (first['used'], first['used_fraction'], first['perplexity']) == (1, 0.5, pytest.approx(1.0))
    assert second['used'] == 2 and second['used_fraction'] == 0.5
    assert second['perplexity'] == pytest.approx(2.0)              # 3 and 3: uniform over two codewords
    assert second['dead_subtrees'] == 1 and second['dead_codewords'] == 2
    for row in usage['subtrees']:
        assert sum(row['counts']) == row['visits']                # children split their parent's visits
    by_parent = {(row['layer'], row['parent']): row for row in usage['subtrees']}
    assert by_parent[(1, -1)]['visits'] == 6
    assert by_parent[(2, 1)]['dead'] and not by_parent[(2, 0)]['dead']
    assert perplexity(np.array([5, 5, 5, 5])) == pytest.approx(4.0) and perplexity(np.zeros(3)) == 0.0


def test_random_tree_usage_sums_at_every_layer():
    rng = np.random.default_rng(0)
    local = rng.integers(0, 3, size=(5, 4, 3, 3))
    usage = codebook_usage(local, 3)
    for layer in usage['layers']:
        children = [row for row in usage['subtrees'] if row['layer'] == layer['layer']]
        assert len(children) == layer['codebooks'] == 3 ** (layer['layer'] - 1)
        assert sum(sum(row['counts']) for row in children) == usage['positions'] == 5 * 3 * 3


@pytest.mark.parametrize('target', [20.0, 10.0, 5.0, 0.0])
def test_noise_hits_the_requested_snr(target):
    frames = torch.rand(6, 1, 16, 16) * (torch.rand(6, 1, 1, 1) + 0.1)
    noisy = add_noise(frames, target, torch.Generator().manual_seed(0))
    assert snr_per_frame(noisy, frames).numpy() == pytest.approx(np.full(6, target), abs=1e-4)


def test_blurs_keep_brightness_and_fragment_blur_stays_in_its_square():
    frames = torch.zeros(3, 1, 32, 32)
    frames[:, :, 8:24:2, 8:24:2] = 1.0
    blurred = gaussian_blur(frames, 1.5)
    assert blurred.sum().item() == pytest.approx(frames.sum().item(), rel=1e-4)  # reflected borders, far away
    assert blurred.max() < frames.max()
    fragment = fragment_blur(frames, 0.25, torch.Generator().manual_seed(1))
    changed = (fragment != frames).any(dim=1)                       # (N, H, W)
    for mask in changed:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        if len(rows):
            assert rows.max() - rows.min() < 16 and cols.max() - cols.min() < 16   # inside a 16x16 square
    with pytest.raises(ValueError, match='Unknown corruption'):
        corrupt(frames, 'jpeg', 10, torch.Generator())


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    """A runner-style experiment folder: checkpoint with hyper_parameters, and saved test arrays."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('trained')
    config = dict(TINY_MODEL, method='shrvqvae', dataname='mmnist', save_dir=str(folder))
    model = SHRVQVAE_Model(**config)
    model.vqvae.train()
    videos = MovingSquares(length=6, frames=8).videos
    model.vqvae(videos[:, :4])                 # the quantizer initialises its codebooks from data
    (folder / 'checkpoints').mkdir()
    torch.save({'state_dict': {f'model.{k}': v for k, v in model.state_dict().items()}, 'hyper_parameters': config},
               folder / 'checkpoints' / 'best.ckpt')
    (folder / 'saved').mkdir()
    np.save(folder / 'saved' / 'inputs.npy', videos[:, :4].numpy())
    np.save(folder / 'saved' / 'trues.npy', videos[:, 4:].numpy())
    return folder


def test_partial_reconstructions_end_at_the_full_reconstruction(work_dir):
    trained = load_trained_model(str(work_dir))
    vqvae = trained.model.vqvae
    frames = torch.as_tensor(np.load(work_dir / 'saved' / 'inputs.npy')[:, 0])
    recon = layer_reconstructions(vqvae, frames)
    assert recon.shape == (len(frames), TINY_MODEL['vq_layers'], 1, 16, 16)
    torch.testing.assert_close(recon[:, -1], vqvae.decode_indices(vqvae.encode(frames)))
    contributions = layer_contributions(vqvae, recon)
    empty = vqvae.decode_latent(torch.zeros(len(frames), vqvae.latent_dim, 4, 4))
    torch.testing.assert_close(contributions.sum(1) + empty, recon[:, -1])   # the maps add up to the frame


def test_analyze_all_writes_tables_and_figures(work_dir, tmp_path):
    leaderboard = tmp_path / 'leaderboard.json'
    rows = [{'method': 'S-HR-VQVAE', 'config': 'a.py', 'status': 'ok', 'mse': 50.0, 'mae': 90.0, 'ssim': 0.9,
             'psnr': 20.0, 'lpips': None, 'params': 10 ** 6,
             'model_config': {'in_shape': [10, 1, 64, 64], 'vq_layers': layers, 'vq_codebook_size': size,
                              'joint_epochs': joint}}
            for layers, size, joint in ((3, 4, 10), (1, 64, 0), (3, 4, 0))]
    rows.append({'method': 'SimVPv2 (gSTA)', 'config': 'b.py', 'status': 'ok', 'mse': 30.0})
    leaderboard.write_text(json.dumps({'rows': rows, 'meta': {'budget': '1 epoch'}}))
    out = tmp_path / 'analysis'
    done = load_tool('analyze').main([
        'all', '--work_dir', str(work_dir), '--leaderboard', str(leaderboard), '--out', str(out),
        '--num_sequences', '3', '--predict_sequences', '2', '--num_frames', '2',
        '--configs', config_path('mmnist/shvqvae')])
    assert done == ['layers', 'usage', 'robustness', 'compression', 'sweep']
    for name in ('layers.png', 'robustness.png', 'robustness_examples.png'):
        with Image.open(out / name) as image:
            assert image.size[0] > 50 and image.size[1] > 50
    usage = json.loads((out / 'usage.json').read_text())
    assert usage['positions'] == 3 * 8 * 4 * 4
    robustness = json.loads((out / 'robustness.json').read_text())['rows']
    assert [(row['corruption'], row['level']) for row in robustness] == list(DEFAULT_CONDITIONS)
    noise = {row['level']: row['input_snr_db'] for row in robustness if row['corruption'] == 'noise'}
    assert all(math.isclose(level, measured, abs_tol=1e-3) for level, measured in noise.items())
    sweep = json.loads((out / 'sweep.json').read_text())
    assert [(row['layers'], row['training']) for row in sweep] == [(1, 'disjoint'), (3, 'disjoint'), (3, 'joint')]
    assert '21.33' in (out / 'compression.md').read_text()


def test_clear_errors_for_missing_or_foreign_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match='No checkpoint at'):
        load_trained_model(str(tmp_path))
    (tmp_path / 'checkpoints').mkdir()
    torch.save({'state_dict': {}, 'hyper_parameters': {'method': 'simvp'}}, tmp_path / 'checkpoints' / 'best.ckpt')
    with pytest.raises(ValueError, match='S-HR-VQVAE'):
        load_trained_model(str(tmp_path))
    assert sweep_rows([{'method': 'S-HR-VQVAE', 'status': 'skipped: no OpenSTL'}]) == []


def test_sweep_tells_decodings_of_one_checkpoint_apart():
    config = {'in_shape': [10, 1, 64, 64], 'vq_layers': 3, 'vq_codebook_size': 4, 'vq_latent_dim': 4}
    rows = [dict(method='S-HR-VQVAE', status='ok', config='quick.py', model_config=config, decoding=decoding,
                 mse=mse, params=1) for decoding, mse in (('mean of 8 samples (T=1)', 70.0), ('argmax', 118.0))]
    table = sweep_markdown(sweep_rows(rows))
    assert '| argmax | 1536 | 118.00 |' in table and '| mean of 8 samples (T=1) | 1536 | 70.00 |' in table


def openstl_config(name):
    """A config file of OpenSTL's checkout (``<checkout>/configs/<name>``), where its package is installed from one."""
    spec = importlib.util.find_spec('openstl')
    checkout = osp.dirname(osp.dirname(spec.origin)) if spec and spec.origin else ''
    return osp.join(checkout, 'configs', name)


@pytest.mark.parametrize('config', [osp.join(REPO, 'configs', 'tdigits', 'simvp_n6.py'),
                                    openstl_config(osp.join('mmnist', 'simvp', 'SimVP_gSTA.py'))])
def test_analyze_refuses_a_config_of_another_method_in_one_line(config, tmp_path):
    """A SimVP config (the plugin's or one that exists only in OpenSTL) has no codebooks: tools/analyze.py says so
    in one line and exits non-zero, instead of writing an empty table."""
    import subprocess
    import sys
    if not osp.isfile(config):
        pytest.skip(f'{config} is not on this machine (OpenSTL is not installed from a checkout)')
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'analyze.py'), 'compression', '--configs', config,
                           '--out', str(tmp_path / 'out')], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert lines[0] == (f'ValueError: {config} is a config of SimVP, not of S-HR-VQVAE: the compression ratio is '
                        f'that of its codebook indices, which only S-HR-VQVAE has; pass S-HR-VQVAE configs, e.g. '
                        f'configs/mmnist/shvqvae.py.')
    assert not (tmp_path / 'out' / 'compression.md').exists()
