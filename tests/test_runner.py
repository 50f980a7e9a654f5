"""The experiment runner: config resolution, end-to-end training on the embedded digits, resume."""
import os
import os.path as osp
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from openstl_hrvq.api import Experiment, create_parser, resolve_config
from openstl_hrvq.api.checkpoints import BestCheckpoint
from openstl_hrvq.api.cli import run
from openstl_hrvq.api.experiment import choose_accelerator
from openstl_hrvq.errors import ConfigError
from openstl_hrvq.models import STPixelCNN
from openstl_hrvq.references import REFERENCE_NAMES
from tests.helpers import TINY_MODEL

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tiny_config_file(tmp_path, **extra):
    """A flat config in OpenSTL's style: the tiny model on embedded-digit Moving MNIST, 4 -> 4 frames."""
    keys = dict(TINY_MODEL, method='SHRVQVAE', dataname='mmnist', in_shape=[4, 1, 64, 64], vq_epochs=1,
                prior_epochs=1, joint_epochs=0, epoch=2, batch_size=4, val_batch_size=4, lr=3e-3,
                sched='constant', num_workers=0, train_size=16, test_size=8, ckpt_every_n_steps=2, **extra)
    path = tmp_path / 'tiny.py'
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in keys.items()))
    return str(path)


def argv(tmp_path, *more):
    return ['-c', tiny_config_file(tmp_path), '--res_dir', str(tmp_path / 'work_dirs'), '--ex_name', 'tiny',
            '--data_root', str(tmp_path / 'no_data'), *more]


def test_precedence_defaults_file_flags_cfg_options(tmp_path):
    config = resolve_config(vars(create_parser().parse_args(
        argv(tmp_path, '--lr', '0.01', '--cfg-options', 'vq_hidden=12', 'batch_size=2'))))
    assert config['lr'] == 0.01                      # flag beats file
    assert config['vq_hidden'] == 12 and config['batch_size'] == 2   # --cfg-options beat everything
    assert config['prior_blocks'] == 1               # from the file
    assert config['seed'] == 42 and config['device'] == 'auto'       # defaults
    assert config['metrics'] == ['mse', 'mae', 'ssim', 'psnr']       # dataset parameters fill the rest
    assert config['method'] == 'SHRVQVAE' and config['total_length'] == 8


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(KeyError, match="Unknown config key 'vq_hiden'.*Did you mean 'vq_hidden'"):
        resolve_config(vars(create_parser().parse_args(argv(tmp_path, '--cfg-options', 'vq_hiden=3'))))
    bad = tmp_path / 'bad.py'
    bad.write_text("method = 'SHRVQVAE'\nprior_blockz = 2\n")
    with pytest.raises(KeyError, match="'prior_blockz'"):
        resolve_config({'config_file': str(bad)})
    with pytest.raises(FileNotFoundError, match='does not exist'):
        resolve_config({'config_file': str(tmp_path / 'missing.py')})
    with pytest.raises(SystemExit):
        create_parser().parse_args(['--no_such_flag'])


def test_every_shipped_config_resolves():
    for name in ('mmnist/shvqvae', 'mmnist/shvqvae_joint', 'mmnist/shvqvae_1layer', 'mmnist/shvqvae_6layer',
                 'mmnist/shvqvae_quick', 'mmnist/shvqvae_quick_joint', 'mmnist/shvqvae_raster', 'kth/shvqvae',
                 'kth/shvqvae_joint', 'kth/shvqvae_1layer', 'kth/shvqvae_9layer', 'kth/shvqvae_raster'):
        path = osp.join(REPO, 'configs', f'{name}.py')
        # OpenSTL's reader imports the file as a module: its bytes must compile as Python (a first-lines comment
        # such as "decoding: the ..." would be read as an encoding declaration)
        compile(Path(path).read_bytes(), path, 'exec')
        config = resolve_config({'config_file': path})
        assert config['method'] == 'SHRVQVAE'
        assert config['decode_order'] == ('raster' if name.endswith('_raster') else 'parallel')
    main = resolve_config({'config_file': osp.join(REPO, 'configs', 'mmnist', 'shvqvae.py')})
    assert (main['epoch'], main['batch_size'], main['lr']) == (200, 16, 3e-4)
    # the joint quick config repeats the quick config's keys (configs are flat files) but its stages and decoding
    quick, quick_joint = (resolve_config({'config_file': osp.join(REPO, 'configs', 'mmnist', f'{name}.py')})
                          for name in ('shvqvae_quick', 'shvqvae_quick_joint'))
    changed = {key for key in quick if quick[key] != quick_joint[key]}
    assert changed == {'config_file', 'prior_epochs', 'joint_epochs', 'sample_temperature',
                       'decoding_samples'}
    assert (quick_joint['joint_epochs'], quick_joint['sample_temperature']) == (1, 0.0)
    kth = resolve_config({'config_file': osp.join(REPO, 'configs', 'kth', 'shvqvae.py')})
    assert kth['epoch'] == 100 and kth['in_shape'] == [10, 1, 128, 128] and kth['aft_seq_length'] == 20


def test_accelerator_is_chosen_from_the_machine():
    assert choose_accelerator('auto') == ('gpu' if torch.cuda.is_available() else 'cpu')
    assert choose_accelerator('cpu') == 'cpu'
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='no CUDA device'):
            choose_accelerator('cuda')


def test_train_and_test_write_openstl_work_dir(tmp_path):
    results = run(argv(tmp_path))
    work = tmp_path / 'work_dirs' / 'tiny'
    for name in ('config.py', 'model_param.json', 'checkpoints/best.ckpt', 'checkpoints/last.ckpt',
                 'saved/metrics.npy', 'saved/inputs.npy', 'saved/trues.npy', 'saved/preds.npy'):
        assert (work / name).exists(), name
    assert list((work / 'logs').glob('version_*/metrics.csv'))
    assert list((work / 'tensorboard').glob('version_*/events.out.tfevents.*'))
    assert list(work.glob('train_*.log'))
    assert {'mse', 'mae', 'ssim', 'psnr'} | {f'{name}_mse' for name in REFERENCE_NAMES} <= set(results)
    preds = np.load(work / 'saved' / 'preds.npy')
    assert preds.shape == (8, 4, 1, 64, 64) and preds.min() >= 0 and preds.max() <= 1
    # one MSE per predicted frame is logged for the method and each reference; they average to the MSE
    log_text = next(work.glob('train_*.log')).read_text()
    per_frame = {line.split('frame, ')[1].split(':')[0]: [float(v) for v in line.split(':')[-1].split()]
                 for line in log_text.splitlines() if 'per predicted frame' in line}
    assert set(per_frame) == {'method', 'copy-last-frame', 'mean-frame', 'all-black'}
    assert all(len(values) == 4 for values in per_frame.values())
    assert sum(per_frame['method']) / 4 == pytest.approx(results['mse'], abs=0.1)
    for name in REFERENCE_NAMES:
        assert sum(per_frame[name]) / 4 == pytest.approx(results[f'{name}_mse'], abs=0.1)
    # --test re-scores the best checkpoint without training
    assert run(argv(tmp_path, '--test'))['mse'] == pytest.approx(results['mse'], rel=1e-5)


@pytest.mark.parametrize('fp16', [False, True], ids=['float32', 'fp16'])
def test_fp16_trains_under_bfloat16_autocast_on_a_cpu(tmp_path, monkeypatch, fp16):
    """OpenSTL's --fp16 is float16 autocast on CUDA; a CPU's autocast has bfloat16 only, which --fp16 selects
    there. Every prior step runs under it (and none without the flag), and the saved predictions are float32."""
    seen = []
    loss = STPixelCNN.loss

    def recording_loss(self, *args, **kwargs):
        seen.append(torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu') else None)
        return loss(self, *args, **kwargs)

    monkeypatch.setattr(STPixelCNN, 'loss', recording_loss)
    results = run(argv(tmp_path, '--device', 'cpu', *(['--fp16'] if fp16 else [])))
    assert seen and set(seen) == {torch.bfloat16 if fp16 else None}
    preds = np.load(tmp_path / 'work_dirs' / 'tiny' / 'saved' / 'preds.npy')
    assert preds.dtype == np.float32 and preds.min() >= 0 and preds.max() <= 1
    assert np.isfinite(results['mse'])


class RisingValidationLoss(pl.LightningModule):
    """val_loss = epoch (the earliest epoch is best); only epochs from `first_candidate` on may compete."""

    def __init__(self, first_candidate):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.first_candidate = first_candidate

    @property
    def checkpoint_candidate(self):
        return self.current_epoch >= self.first_candidate

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log('val_loss', float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize('first_candidate', [0, 2])
def test_best_checkpoint_is_chosen_among_the_epochs_the_method_lets_compete(tmp_path, first_candidate):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    trainer = pl.Trainer(max_epochs=4, callbacks=[BestCheckpoint(dirpath=tmp_path, filename='best',
                                                                 monitor='val_loss', mode='min')],
                         logger=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(RisingValidationLoss(first_candidate), data, data)
    assert torch.load(tmp_path / 'best.ckpt', weights_only=False)['epoch'] == first_candidate


class RecordCandidates(pl.Callback):
    """(epoch, checkpoint_candidate) after each validation of training (not the sanity check)."""

    def __init__(self):
        self.seen = []

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.seen.append((trainer.current_epoch, pl_module.checkpoint_candidate))


def test_shrvqvae_lets_only_its_final_stage_compete_for_the_best_checkpoint(tmp_path):
    config = resolve_config(vars(create_parser().parse_args(argv(tmp_path))))
    config.update(no_display_method_info=True, vq_epochs=1, prior_epochs=1, joint_epochs=1, epoch=3)
    experiment = Experiment(config)
    record = RecordCandidates()
    experiment.trainer.callbacks.append(record)
    experiment.train()
    assert record.seen == [(0, False), (1, False), (2, True)]
    assert torch.load(osp.join(experiment.ckpt_dir, 'best.ckpt'), weights_only=False)['epoch'] == 2


class StopAt(pl.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            raise RuntimeError('simulated interruption')


def test_interrupted_run_resumes_without_repeating_or_losing_steps(tmp_path):
    config = resolve_config(vars(create_parser().parse_args(argv(tmp_path))))
    config['no_display_method_info'] = True
    steps_per_epoch = 16 // 4
    total = 2 * steps_per_epoch

    uninterrupted = Experiment(dict(config, ex_name='straight'))
    uninterrupted.train()
    assert uninterrupted.trainer.global_step == total

    interrupted = Experiment(dict(config, ex_name='killed'))
    interrupted.trainer.callbacks.append(StopAt(steps_per_epoch + 1))   # mid-way through stage "prior"
    with pytest.raises(RuntimeError, match='simulated'):
        interrupted.train()
    assert interrupted.method.stage == 'prior'
    resumed = Experiment(dict(config, ex_name='killed', resume=True))
    resumed.train()
    assert resumed.trainer.global_step == total
    assert resumed.method.stage == 'prior'


def test_a_run_resumed_from_another_checkpoint_tests_what_it_trained(tmp_path):
    run(argv(tmp_path))
    start = tmp_path / 'work_dirs' / 'tiny' / 'checkpoints' / 'last.ckpt'
    continued = run(argv(tmp_path, '--ex_name', 'continued', '--resume', '--ckpt_path', str(start),
                         '--cfg-options', 'epoch=3', 'prior_epochs=2'))
    work = tmp_path / 'work_dirs' / 'continued'
    assert f"Testing {work / 'checkpoints' / 'best.ckpt'} (epoch 2," in next(work.glob('train_*.log')).read_text()
    assert run(argv(tmp_path, '--ex_name', 'continued', '--test'))['mse'] == pytest.approx(continued['mse'], rel=1e-5)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    config = resolve_config(vars(create_parser().parse_args(argv(tmp_path, '--resume'))))
    with pytest.raises(FileNotFoundError, match='--resume found no checkpoint'):
        Experiment(config).train()


def test_console_shows_our_lines_not_dependency_notices(tmp_path):
    # a real process: under pytest, warnings and log records are captured before they reach the console
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), *argv(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1', COLUMNS='80'))
    console = done.stdout
    assert done.returncode == 0, console[-2000:]
    assert 'Model info' in console and 'Test MSE per predicted frame' in console
    for notice in ('Tip:', 'litlogger', 'GPU available', 'LeafSpec', 'weights_only', 'Total FLOPs',
                   'worker processes in total', 'max_epochs=', 'torch.jit.script', 'Warning'):
        assert notice not in console, notice
    assert console.count('Test metrics') == 1 and console.count('mse=') == 1
    # the progress bars fit an 80-column terminal, and the test bar is gone before the results
    bars = [re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', segment) for segment in re.split('[\r\n]', console) if '%|' in segment]
    assert bars and max(map(len, bars)) <= 80, max(bars, key=len)
    assert 'Testing' not in console[console.index('Test metrics'):]
    saved = tmp_path / 'work_dirs' / 'tiny' / 'saved'
    assert f"{saved / 'grid.png'} (inputs, truth, prediction) and {saved / 'animation.gif'}" in console
    assert (saved / 'grid.png').stat().st_size > 0 and (saved / 'animation.gif').stat().st_size > 0


def test_an_error_during_training_is_reported_on_a_line_of_its_own(tmp_path):
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), *argv(tmp_path),
                           '--no_display_method_info', '--cfg-options', 'lr=1e6'],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1', COLUMNS='80'))
    assert done.returncode == 2
    assert any(line.startswith('error: Training diverged') for line in done.stdout.splitlines()), done.stdout[-2000:]
