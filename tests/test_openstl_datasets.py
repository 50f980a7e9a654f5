"""Every dataset OpenSTL knows runs through the runner: the shipped configs train and test on small files in
OpenSTL's own layouts (read by OpenSTL's loaders), unknown and missing datasets are one clear line."""
import os.path as osp
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api.cli import main, run
from openstl_hrvq.api.config import resolve_config
from openstl_hrvq.api.data import all_dataset_parameters
from openstl_hrvq.models import SHRVQVAE_Model
from openstl_hrvq.model_info import count_parameters
from tests import openstl_layouts as layouts

REPO = Path(__file__).resolve().parents[1]

#: A few weights per part and one optimizer step per stage: the shipped configs' tree and protocol, tiny widths.
TINY = ['vq_hidden=8', 'vq_res_hidden=4', 'vq_res_blocks=1', 'prior_hidden=8', 'prior_blocks=1', 'prior_heads=2',
        'vq_epochs=1', 'prior_epochs=1', 'batch_size=2', 'val_batch_size=2', 'num_workers=0', 'train_size=2',
        'test_size=3', 'val_size=2']


def _fake_cifar(monkeypatch, data_root: Path):
    """torchvision checks CIFAR-10's archive checksums, so no small stand-in passes: its folder is there, and the
    backgrounds OpenSTL reads from it are drawn instead."""
    (data_root / 'cifar10').mkdir(parents=True)
    module = openstl_bridge.openstl_module('datasets.dataloader_moving_mnist')
    monkeypatch.setattr(module, 'load_cifar', lambda root, data_name='mnist_cifar': np.random.default_rng(0).integers(
        0, 256, (8, 32, 32, 3), dtype=np.uint8))


#: config -> (writes its data and returns the in_shape it wrote, needs OpenSTL)
SHIPPED = {
    'taxibj/shvqvae.py': (layouts.write_taxibj, True),
    'kitticaltech/shvqvae.py': (layouts.write_kitticaltech, True),
    'human/shvqvae.py': (layouts.write_human, True),
    'weather/t2m_5_625/shvqvae.py': (layouts.write_weather_t2m, True),
    'mmnist_cifar/shvqvae.py': (lambda root, rng: layouts.write_moving_digits(
        root, rng, 'moving_mnist', 'mnist_cifar_test_seq.npy', frames=8, size=32, channels=3), True),
    'mfmnist/shvqvae.py': (lambda root, rng: layouts.write_moving_digits(
        root, rng, 'moving_fmnist', 'fmnist_test_seq.npy', frames=8, size=32), False),
}


@pytest.mark.parametrize('config', SHIPPED)
def test_shipped_config_fits_its_dataset_and_states_its_cost(config, request):
    if SHIPPED[config][1]:
        request.getfixturevalue('openstl')
    path = REPO / 'configs' / config
    resolved = resolve_config({'config_file': str(path)})
    protocol = all_dataset_parameters()[resolved['dataname']]
    assert resolved['in_shape'] == protocol['in_shape']
    assert (resolved['pre_seq_length'], resolved['aft_seq_length']) == (protocol['pre_seq_length'],
                                                                          protocol['aft_seq_length'])
    header = ''.join(line for line in path.read_text().splitlines(keepends=True) if line.startswith('#'))
    _, channels, height, width = resolved['in_shape']
    grid = f'{height // 4}x{width // 4}x{resolved["vq_latent_dim"]}'
    assert 'Downsampling x4' in header and grid in header
    size, layers = resolved['vq_codebook_size'], resolved['vq_layers']
    assert f'{layers} layers, M = {size}' in header
    stated = int(re.search(r'([\d,]+) parameters', header).group(1).replace(',', ''))
    assert stated == count_parameters(SHRVQVAE_Model(**resolved))
    assert re.search(r'[\d.]+ GFLOPs per sample', header)


@pytest.mark.parametrize('config', SHIPPED)
def test_shipped_config_trains_and_tests_on_openstls_layout(config, tmp_path, monkeypatch, request):
    writer, needs_openstl = SHIPPED[config]
    if needs_openstl:
        request.getfixturevalue('openstl')
    if config.startswith('mmnist_cifar'):
        _fake_cifar(monkeypatch, tmp_path / 'data')
    in_shape = writer(tmp_path / 'data', np.random.default_rng(0))
    frames = ([f'pre_seq_length={in_shape[0]}', f'aft_seq_length={in_shape[0]}']
              if config.startswith(('mmnist_cifar', 'mfmnist')) else [])
    argv = ['-c', str(REPO / 'configs' / config), '--data_root', str(tmp_path / 'data'), '--res_dir',
            str(tmp_path / 'work_dirs'), '--ex_name', 'run', '--epoch', '2', '--device', 'cpu',
            '--cfg-options', *TINY, f'in_shape={in_shape}', *frames]
    trained = run(argv)
    saved = tmp_path / 'work_dirs' / 'run' / 'saved'
    preds, trues = np.load(saved / 'preds.npy'), np.load(saved / 'trues.npy')
    config_values = resolve_config({'config_file': str(REPO / 'configs' / config)})
    aft = in_shape[0] if frames else config_values['aft_seq_length']
    assert preds.shape == trues.shape == (3, aft, *in_shape[1:]) and np.isfinite(preds).all()
    assert np.isfinite(trained['mse']) and trained['mse'] > 0
    assert run(argv + ['--test'])['mse'] == trained['mse']    # tools/test.py scores the same checkpoint


def test_unknown_dataset_lists_every_known_dataset(capsys):
    assert main(['-d', 'no_such_data']) == 2
    message = capsys.readouterr().err.strip()
    assert message.count('\n') == 0 and "Unknown dataset 'no_such_data'" in message
    for name in all_dataset_parameters():
        assert repr(name) in message


@pytest.mark.parametrize('dataname, expected, script', [
    ('taxibj', 'taxibj/dataset.npz', 'download_taxibj.sh'),
    ('human', 'human/train.txt', 'download_human3.6m.sh'),
    ('weather_uv10_5_625', '10m_u_component_of_wind/10m_u_component_of_wind*.nc', 'download_weatherbench.sh'),
    ('kinetics', 'kinetics400/annotations/train.csv', 'download_kinetics.sh'),
    ('bair', 'softmotion30_44k/train', 'download_bair.sh'),
])
def test_missing_openstl_data_is_one_line(openstl, tmp_path, capsys, dataname, expected, script):
    code = main(['-c', osp.join(REPO, 'configs', 'mmnist', 'shvqvae.py'), '-d', dataname, '--data_root', str(tmp_path),
                 '--res_dir', str(tmp_path / 'work_dirs'), '--device', 'cpu'])
    message = capsys.readouterr().err.strip()
    assert code == 2 and message.count('\n') == 0
    assert f"No '{dataname}' data under" in message and expected in message and script in message


def test_weather_datasets_find_openstls_config_folders(openstl):
    config = resolve_config({'dataname': 'weather_t2m_5_625'})
    assert config['config_file'] == osp.join('configs', 'weather', 't2m_5_625', 'shvqvae.py')
    assert config['in_shape'] == [12, 1, 32, 64]


def _tiny_simvp(**extra) -> dict:
    return dict(hid_S=4, hid_T=8, N_T=2, N_S=2, batch_size=2, val_batch_size=2, num_workers=0, **extra)


def test_openstl_taxibj_simvp_config_steps_timm_cosine_schedule_as_timm_does(openstl, tmp_path):
    from openstl.core.optim_scheduler import get_optim_scheduler
    from openstl_hrvq.api import Experiment
    from openstl_hrvq.benchmark.entries import openstl_root

    layouts.write_taxibj(tmp_path / 'data', np.random.default_rng(0))
    config_file = osp.join(openstl_root(), 'configs', 'taxibj', 'SimVP.py')     # sched = 'cosine', warmup 5
    epochs = 3
    experiment = Experiment(resolve_config({
        'config_file': config_file, 'dataname': 'taxibj', 'data_root': str(tmp_path / 'data'), 'device': 'cpu',
        'res_dir': str(tmp_path / 'work_dirs'), 'ex_name': 'simvp', 'epoch': epochs,
        'cfg_options': _tiny_simvp(train_size=4, test_size=2, warmup_epoch=1)}))
    experiment.train()
    assert np.isfinite(experiment.test()['mse'])
    trained_lr = experiment.trainer.optimizers[0].param_groups[0]['lr']
    # timm's own training loop steps the scheduler with the next epoch's number after every epoch.
    optimizer, scheduler, by_epoch = get_optim_scheduler(experiment.method.hparams, epochs, torch.nn.Linear(1, 1),
                                                         experiment.method.hparams.steps_per_epoch)
    assert by_epoch and type(scheduler).__name__ == 'CosineLRScheduler'
    lrs = []
    for epoch in range(1, epochs + 1):
        scheduler.step(epoch)
        lrs.append(optimizer.param_groups[0]['lr'])
    assert trained_lr == pytest.approx(lrs[-1]) and len(set(lrs)) == epochs   # it moved every epoch


def test_leaderboard_ranks_shvqvae_beside_openstls_baseline_on_taxibj(openstl, tmp_path):
    from tests.helpers import load_tool

    layouts.write_taxibj(tmp_path / 'data', np.random.default_rng(0))
    tiny = [f'shvqvae:{item}' for item in TINY] + [f'SimVP_gSTA:{key}={value}' for key, value in _tiny_simvp().items()]
    result = load_tool('leaderboard').main([
        '-d', 'taxibj', '--configs', osp.join(REPO, 'configs', 'taxibj', 'shvqvae.py'), '--baselines', 'simvp',
        '--epoch', '2', '--train_size', '4', '--test_size', '3', '--data_root', str(tmp_path / 'data'),
        '--device', 'cpu', '--out', str(tmp_path / 'board'), '--throughput-batch', '1', '--throughput-repeats', '1',
        '--animation-samples', '2', '--override', *tiny])
    rows = {row['label']: row for row in result['rows']}
    assert {'shvqvae', 'SimVP_gSTA'} <= set(rows)
    assert all(np.isfinite(rows[label]['mse']) for label in ('shvqvae', 'SimVP_gSTA'))
    assert (tmp_path / 'board' / 'leaderboard_grid.png').is_file()


def test_pictures_show_two_channel_and_z_scored_frames():
    from openstl_hrvq.visualization import frame_to_rgb, unit_range

    flows = np.stack([np.zeros((4, 5)), np.ones((4, 5))])             # TaxiBJ: inflow, outflow
    image = frame_to_rgb(flows)
    assert image.shape == (4, 10, 3) and image[:, :5].max() == 0 and image[:, 5:].min() == 255
    z_scored = np.array([-2.0, 0.0, 3.0])
    shown, prediction = unit_range(z_scored, z_scored, np.array([0.5]))
    np.testing.assert_allclose(shown, [0.0, 0.4, 1.0])
    np.testing.assert_allclose(prediction, [0.5])
    unit = np.array([0.0, 0.5])
    assert unit_range(unit, unit)[0] is unit                              # [0, 1] data are shown as they are


def _weather_argv(tmp_path, *options):
    return ['-c', str(REPO / 'configs' / 'weather' / 't2m_5_625' / 'shvqvae.py'), '--data_root', str(tmp_path / 'data'),
            '--res_dir', str(tmp_path / 'work_dirs'), '--ex_name', 'weather', '--device', 'cpu',
            '--cfg-options', 'num_workers=0', *options]


def test_z_scored_weather_is_refused_by_a_unit_range_tokenizer_in_one_line(openstl, tmp_path, capsys):
    layouts.write_weather_t2m(tmp_path / 'data', np.random.default_rng(0), days={2010: 2, 2016: 2, 2017: 2})
    assert main(_weather_argv(tmp_path, *TINY, 'vq_value_range=[0.0, 1.0]', '--epoch', '2')) == 2
    message = capsys.readouterr().err.strip()
    assert message.count('\n') == 0 and re.search(r'values in \[-\d[\d.]*, \d[\d.]*\]', message)
    assert 'vq_value_range=None' in message


@pytest.mark.slow
def test_weather_predictions_beat_copying_the_last_frame(openstl, tmp_path):
    """On WeatherBench's layout (z-scored by OpenSTL's loader, far outside [0, 1]) the unclamped tokenizer learns the
    field and the prior the diurnal wave: a small model beats copy-last-frame after 16 epochs (~200 steps)."""
    layouts.write_weather_t2m(tmp_path / 'data', np.random.default_rng(0))
    results = run(_weather_argv(tmp_path, 'vq_hidden=16', 'vq_res_hidden=8', 'vq_res_blocks=1', 'prior_hidden=16',
                                'prior_blocks=1', 'prior_heads=2', 'vq_epochs=6', 'prior_epochs=10', 'lr=3e-3',
                                'batch_size=8', 'val_batch_size=8', '--epoch', '16'))
    assert results['mse'] < results['copy-last-frame_mse']
    preds = np.load(tmp_path / 'work_dirs' / 'weather' / 'saved' / 'preds.npy')
    assert preds.min() < -1 and preds.max() > 1          # the predictions span the z-scores, unclamped


@pytest.mark.parametrize('dataname, config, writer', [
    ('kitticaltech', 'kitticaltech/SimVP.py', layouts.write_kitticaltech),
    ('human', 'human/SimVP.py', layouts.write_human),
    ('weather_t2m_5_625', 'weather/t2m_5_625/SimVP_gSTA.py', layouts.write_weather_t2m),
])
def test_openstl_simvp_runs_with_its_own_config_on_every_layout(openstl, tmp_path, dataname, config, writer):
    from openstl_hrvq.benchmark.entries import openstl_root

    in_shape = writer(tmp_path / 'data', np.random.default_rng(0))
    options = [f'{key}={value}' for key, value in _tiny_simvp(train_size=4, test_size=3, in_shape=in_shape).items()]
    results = run(['-c', osp.join(openstl_root(), 'configs', config), '-d', dataname, '--data_root',
                   str(tmp_path / 'data'), '--res_dir', str(tmp_path / 'work_dirs'), '--ex_name', 'simvp',
                   '--epoch', '2', '--device', 'cpu', '--cfg-options', *options])
    preds = np.load(tmp_path / 'work_dirs' / 'simvp' / 'saved' / 'preds.npy')
    assert np.isfinite(results['mse']) and preds.shape[0] == 3 and preds.shape[2:] == tuple(in_shape[1:])
