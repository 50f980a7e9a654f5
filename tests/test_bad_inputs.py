"""Bad inputs and faults, as a new user meets them: each case fails with one clear line, or is made to work.

Every test trains (if at all) the tiny model of ``tests/test_runner.py`` for a few steps on the embedded digits.
"""
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from openstl_hrvq.api import Experiment, create_parser, resolve_config
from openstl_hrvq.api.checkpoints import resume_checkpoint
from openstl_hrvq.api.cli import main
from openstl_hrvq.api import data as runner_data
from openstl_hrvq.api.data import build_dataloaders
from openstl_hrvq.datasets.digit_files import write_idx_images
from openstl_hrvq.errors import (CheckpointError, ConfigError, DataFileError, DivergedError, MissingFileError,
                                 UserError)
from tests.helpers import TINY_MODEL

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STEPS = 2 * 16 // 4   # epoch=2, train_size=16, batch_size=4


def tiny_config_file(tmp_path, **extra):
    """The tiny config of tests/test_runner.py, with ``extra`` keys replacing or adding to it."""
    keys = dict(TINY_MODEL, method='SHRVQVAE', dataname='mmnist', in_shape=[4, 1, 64, 64], vq_epochs=1,
                prior_epochs=1, joint_epochs=0, epoch=2, batch_size=4, val_batch_size=4, lr=3e-3,
                sched='constant', num_workers=0, train_size=16, test_size=8, ckpt_every_n_steps=3)
    keys.update(extra)
    path = tmp_path / 'tiny.py'
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in keys.items()))
    return str(path)


def tiny_argv(tmp_path, *flags, **extra):
    return ['-c', tiny_config_file(tmp_path, **extra), '--res_dir', str(tmp_path / 'work_dirs'), '--ex_name', 'tiny',
            '--data_root', str(tmp_path / 'no_data'), '--no_display_method_info', *flags]


def tiny_config(tmp_path, *flags, **extra):
    """The resolved tiny config; results go to ``tmp_path/work_dirs/tiny``."""
    return resolve_config(vars(create_parser().parse_args(tiny_argv(tmp_path, *flags, **extra))))


def step_of(path) -> int:
    return torch.load(path, map_location='cpu', weights_only=False)['global_step']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A finished tiny run (ckpt_every_n_steps=3: the end of training is not a multiple of it)."""
    root = tmp_path_factory.mktemp('trained')
    Experiment(tiny_config(root)).train()
    return root


def copy_of(trained, tmp_path):
    shutil.copytree(trained / 'work_dirs', tmp_path / 'work_dirs')
    return tmp_path / 'work_dirs' / 'tiny' / 'checkpoints'


# ---------------------------------------------------------------- 10: one last.ckpt, written at the end too
def test_end_of_training_is_the_one_last_checkpoint(trained, tmp_path):
    ckpts = copy_of(trained, tmp_path)
    assert sorted(os.listdir(ckpts)) == ['best.ckpt', 'last.ckpt']
    assert step_of(ckpts / 'last.ckpt') == STEPS
    best = (ckpts / 'best.ckpt').read_bytes()
    # resuming a finished run trains nothing and leaves best.ckpt alone
    resumed = Experiment(dict(tiny_config(tmp_path), resume=True))
    resumed.train()
    assert resumed.trainer.global_step == STEPS
    assert (ckpts / 'best.ckpt').read_bytes() == best


# ---------------------------------------------------------------- 1: a failed start cannot poison --resume
class FailAtStart(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        raise RuntimeError('simulated failure before the first step')


class RecordStart(pl.Callback):
    step = None

    def on_train_start(self, trainer, pl_module):
        self.step = trainer.global_step


def test_failed_start_writes_no_interrupt_checkpoint(trained, tmp_path):
    ckpts = copy_of(trained, tmp_path)
    # one more epoch to train, so the resumed run reaches on_train_start
    experiment = Experiment(dict(tiny_config(tmp_path, '--epoch', '3'), resume=True))
    experiment.trainer.callbacks.append(FailAtStart())
    with pytest.raises(RuntimeError, match='simulated'):
        experiment.train()
    assert experiment.trainer.global_step == STEPS      # restored, then failed: nothing new to save
    assert not (ckpts / 'interrupted.ckpt').exists()


def test_resume_takes_the_most_progress_not_the_newest_file(trained, tmp_path):
    ckpts = copy_of(trained, tmp_path)
    early = torch.load(ckpts / 'last.ckpt', map_location='cpu', weights_only=False)
    early['global_step'] = 0
    torch.save(early, ckpts / 'interrupted.ckpt')        # newer file, less progress
    assert resume_checkpoint(str(ckpts)) == (str(ckpts / 'last.ckpt'), STEPS)


def test_damaged_checkpoint_is_named_with_the_other_one(trained, tmp_path):
    ckpts = copy_of(trained, tmp_path)
    data = (ckpts / 'last.ckpt').read_bytes()
    (ckpts / 'last.ckpt').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as error:
        resume_checkpoint(str(ckpts))
    message = str(error.value)
    assert 'last.ckpt cannot be read' in message and f'--ckpt_path {ckpts / "best.ckpt"}' in message
    assert '\n' not in message


# ---------------------------------------------------------------- 2: no silent resume without --resume
def test_rerun_without_resume_is_refused_and_force_starts_over(trained, tmp_path):
    ckpts = copy_of(trained, tmp_path)
    record = (ckpts.parent / 'config.py').read_text()
    with pytest.raises(CheckpointError, match=r'already holds checkpoints.*--resume.*--force.*--ex_name'):
        Experiment(tiny_config(tmp_path, '--epoch', '3')).train()
    assert (ckpts.parent / 'config.py').read_text() == record
    (ckpts / 'interrupted.ckpt').write_bytes((ckpts / 'last.ckpt').read_bytes())
    fresh = Experiment(tiny_config(tmp_path, '--force'))
    start = RecordStart()
    fresh.trainer.callbacks.append(start)
    fresh.train()
    assert start.step == 0 and fresh.trainer.global_step == STEPS
    assert sorted(os.listdir(ckpts)) == ['best.ckpt', 'last.ckpt']


# ---------------------------------------------------------------- 3: NaN stops the run, and is never saved
def test_nan_stops_training_and_is_never_checkpointed(tmp_path):
    experiment = Experiment(tiny_config(tmp_path, '--cfg-options', 'lr=1e6', 'ckpt_every_n_steps=1'))
    with pytest.raises(DivergedError, match=r'Training diverged: .* stage "vq" at global step \d+ .*lr or vq_lr'
                                            r'.*clip_grad') as error:
        experiment.train()
    assert '\n' not in str(error.value)
    ckpts = tmp_path / 'work_dirs' / 'tiny' / 'checkpoints'
    assert not (ckpts / 'interrupted.ckpt').exists()
    for path in ckpts.glob('*.ckpt'):
        state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
        assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point()), path


# ---------------------------------------------------------------- 7: user mistakes are one line, not a traceback
def write_bad_config(tmp_path):
    path = tmp_path / 'broken.py'
    path.write_text("method = 'SHRVQVAE'\nlr = (1e-3\n")
    return str(path)


def corrupt_train_digits(tmp_path):
    folder = tmp_path / 'bad_data' / 'moving_mnist'
    folder.mkdir(parents=True)
    (folder / 'train-images-idx3-ubyte.gz').write_bytes(b'not gzip at all')
    return str(tmp_path / 'bad_data')


MISTAKES = {
    'unknown key': (lambda t: ['--cfg-options', 'vq_hiden=3'],
                    r"Unknown config key 'vq_hiden'.*'vq_hidden'.*`python tools/train.py --list-keys -m SHRVQVAE`"),
    'missing config': (lambda t: ['-c', str(t / 'nope.py')], r'nope.py.* does not exist'),
    'syntax error': (lambda t: ['-c', write_bad_config(t)], r'broken.py has a syntax error at line 2'),
    'negative lr': (lambda t: ['--cfg-options', 'lr=-0.001'], r"'lr' must be a number > 0, got -0.001"),
    'negative stage lr': (lambda t: ['--cfg-options', 'prior_lr=-1'], r"'prior_lr' must be a number > 0 or None"),
    'batch_size=x': (lambda t: ['--cfg-options', 'batch_size=x'], r"'batch_size' must be an integer >= 1, got 'x'"),
    'vq_layers=0': (lambda t: ['--cfg-options', 'vq_layers=0'], r"'vq_layers' must be an integer >= 1, got 0"),
    'heads': (lambda t: ['--cfg-options', 'prior_heads=3'], r"'prior_heads' must be a divisor of prior_hidden=8"),
    'short epoch': (lambda t: ['--epoch', '1'], r"'epoch' must be at least 2: one epoch for each of the stages"),
    'unknown dataset': (lambda t: ['-d', 'nope'], r"Unknown dataset 'nope'"),
    'unknown method': (lambda t: ['--cfg-options', 'method=Foo'], r"Unknown method 'Foo'"),
    'damaged data': (lambda t: ['--data_root', corrupt_train_digits(t)],
                     r'train-images-idx3-ubyte.gz is not a readable \(gzip\) idx3 file'),
    'missing checkpoint': (lambda t: ['--test', '--ckpt_path', str(t / 'none.ckpt')], r'No checkpoint at .*none.ckpt'),
    'diverging': (lambda t: ['--cfg-options', 'lr=1e6'], r'Training diverged: .*stage "vq"'),
    # round 2: each is refused before training starts
    'limit_val_batches=1.5': (lambda t: ['--cfg-options', 'limit_val_batches=1.5'],
                              r"'limit_val_batches' must be an integer >= 1 \(batches\) or a fraction in \(0, 1\]"),
    'limit_val_batches=0.01': (lambda t: ['--cfg-options', 'limit_val_batches=0.01'],
                               r"'limit_val_batches' must be at least one of the 2 validation batches"),
    'metric_for_bestckpt=foo': (lambda t: ['--metric_for_bestckpt', 'foo'],
                                r"'metric_for_bestckpt' must be a metric the method logs at validation: one of "
                                r"'val_loss', 'val_recon_loss', got 'foo'"),
    'in_shape channels': (lambda t: ['--cfg-options', 'in_shape=[4,3,64,64]'],
                          r"'in_shape' must be \[T, 1, 64, 64\]: the frames of 'mmnist' .* are \(1, 64, 64\)"),
    'seed -1': (lambda t: ['--seed', '-1'], r"'seed' must be an integer in \[0, 4294967295\], got -1"),
    'res_dir is a file': (lambda t: ['--res_dir', write_file(t / 'a_file')],
                          r'a_file/tiny cannot hold files: a part of the path is a file, not a folder'),
    'ex_name of 300 chars': (lambda t: ['--ex_name', 'x' * 300], r'cannot hold files: a name in the path is too long'),
    'data_root is a file': (lambda t: ['--data_root', write_file(t / 'data_file')],
                            r'--data_root .*data_file is a file, not a folder'),
    'log_step skips the final stage': (lambda t: ['--log_step', '3'],
                                       r"'log_step' must be small enough that an epoch which may become best.ckpt "
                                       r"is validated.*epochs 2-2 of 2 compete \(use log_step <= 1\)"),
    'opt=rmsprop': (lambda t: ['--opt', 'rmsprop'], r"'opt' must be one of 'adam', 'adamw', 'sgd'"),
    'momentum with adam': (lambda t: ['--momentum', '0.5'], r"'momentum' must be left out with opt='adam'"),
    'clip_mode=agc': (lambda t: ['--clip_grad', '1', '--clip_mode', 'agc'], r"'clip_mode' must be one of 'norm', 'value'"),
    'warm-up longer than a stage': (lambda t: ['--warmup_epoch', '1'], r"'warmup_epoch' must be shorter than every stage"),
    'sched=Cosine': (lambda t: ['--sched', 'Cosine'], r"'sched' must be one of 'constant', 'none', 'cosine', 'onecycle'"),
    'an OpenSTL key it does not read': (lambda t: ['--drop', '0.1'], r"'drop' is not read by S-HR-VQVAE"),
    'checkpoint without state_dict': (lambda t: ['--test', '--ckpt_path', torch_file(t, {'epoch': 3})],
                                      r"is not a Lightning checkpoint: it has no 'state_dict' of tensors \(its keys: "
                                      r"epoch\)"),
    'bare tensor as checkpoint': (lambda t: ['--test', '--ckpt_path', torch_file(t, torch.zeros(3))],
                                  r"holds a Tensor, not a Lightning checkpoint"),
    'masked with raster': (lambda t: ['--cfg-options', 'future_order=masked', 'decode_order=raster'],
                           r"'decode_order' must be 'parallel' with future_order='masked'"),
    'masked with resampling': (lambda t: ['--cfg-options', 'future_order=masked', 'prior_resample_prob=0.5'],
                               r"'prior_resample_prob' must be 0 with future_order='masked'"),
    'masked_steps with rollout': (lambda t: ['--cfg-options', 'masked_steps=4'],
                                  r"'masked_steps' must be left out with future_order='rollout'"),
    'prior average that never moves': (lambda t: ['--cfg-options', 'prior_ema_decay=1.0'],
                                       r"'prior_ema_decay' must be a number in \[0, 1\): 0 for no average"),
    'expected codewords of an argmax rollout': (lambda t: ['--cfg-options', 'decoding_codewords=expected',
                                                           'sample_temperature=0.0', 'decoding_samples=1'],
                                                r"'decoding_codewords' must be 'sampled' unless the rollout order "
                                                r"is sampled"),
    'resume from weights only': (lambda t: ['--resume', '--ckpt_path', torch_file(t, {'state_dict': {}})],
                                 r'holds weights but no training state'),
}


def write_file(path):
    path.write_text('not a folder')
    return str(path)


def torch_file(tmp_path, content):
    path = tmp_path / 'odd.ckpt'
    torch.save(content, path)
    return str(path)


@pytest.mark.parametrize('case', sorted(MISTAKES))
def test_user_mistakes_print_one_line_and_exit_non_zero(case, tmp_path, capsys, monkeypatch):
    flags, expected = MISTAKES[case]
    argv = tiny_argv(tmp_path) + flags(tmp_path)
    if case != 'diverging':        # every other mistake is refused before training starts
        monkeypatch.setattr(pl.Trainer, 'fit', lambda *args, **kwargs: pytest.fail('training started'))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and '--debug' in err, err
    assert re.search(expected, err), err
    with pytest.raises(UserError, match=expected):
        main(argv + ['--debug', '--force'])


# ---------------------------------------------------------------- 8: --cfg-options method=... is honoured
def test_cfg_options_method_is_honoured_or_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown method 'Foo': choose one of .*shrvqvae"):
        tiny_config(tmp_path, '--cfg-options', 'method=Foo')
    # --cfg-options beat the flags, for the method as for every other key
    config = tiny_config(tmp_path, '--method', 'Nope', '--cfg-options', 'method=shrvqvae')
    assert config['method'] == 'shrvqvae'


# ---------------------------------------------------------------- 9: testing never rewrites the training record
def test_testing_another_configs_checkpoint_is_refused_and_rewrites_nothing(trained, tmp_path, capsys):
    ckpts = copy_of(trained, tmp_path)
    record = {name: (ckpts.parent / name).read_bytes() for name in ('config.py', 'model_param.json')}
    other = tmp_path / 'other'
    other.mkdir()
    argv = ['-c', tiny_config_file(other, vq_hidden=12), '--res_dir', str(tmp_path / 'work_dirs'), '--ex_name', 'tiny',
            '--data_root', str(tmp_path / 'no_data')]
    assert main(argv, test_only=True) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1, err
    assert f'trained with {trained / "tiny.py"}' in err and f'model of {other / "tiny.py"}' in err
    assert 'vq_hidden=8 vs 12' in err
    assert {name: (ckpts.parent / name).read_bytes() for name in record} == record
    # the matching config still tests it
    assert main(tiny_argv(tmp_path), test_only=True) == 0


# ---------------------------------------------------------------- 4, 5, 6: OpenSTL's route
def openstl_layout(root, frames=8, test_file=None):
    """Moving-MNIST files in OpenSTL's layout under ``root``: 40 random digits, 12 test sequences of ``frames``."""
    rng = np.random.default_rng(0)
    folder = root / 'moving_mnist'
    write_idx_images(folder / 'train-images-idx3-ubyte.gz', rng.integers(0, 256, (40, 28, 28), dtype=np.uint8))
    test = rng.integers(0, 256, (frames, 12, 64, 64), dtype=np.uint8) if test_file is None else test_file
    np.save(folder / 'mnist_test_seq.npy', test)
    return folder


def data_config(tmp_path, **options):
    flags = ['--data_root', str(tmp_path / 'data')]
    if options:
        flags += ['--cfg-options', *(f'{key}={value}' for key, value in options.items())]
    return tiny_config(tmp_path, *flags)


def test_openstl_route_honours_caps_and_zero_workers(openstl, tmp_path):
    openstl_layout(tmp_path / 'data')
    train, val, test, source = build_dataloaders(data_config(tmp_path, num_workers=0, train_size=8, test_size=5))
    assert source == 'openstl'
    assert (len(train.dataset), len(val.dataset), len(test.dataset)) == (8, 5, 5)
    assert len(train) == 2 and train.num_workers == 0
    inputs, targets = next(iter(train))
    assert inputs.shape == (4, 4, 1, 64, 64) and targets.shape == (4, 4, 1, 64, 64)
    assert test.dataset.mean == 0 and test.dataset.std == 1     # what the runner reads from the dataset
    # the test split in the runner's arrays: the same frames as the file, scaled once
    inputs, targets, _ = runner_data.test_arrays(data_config(tmp_path, test_size=5))
    frames = np.load(tmp_path / 'data' / 'moving_mnist' / 'mnist_test_seq.npy')
    assert np.allclose(inputs[:, :, 0], frames[:4, :5].transpose(1, 0, 2, 3) / 255.0)


def float_test_set(folder):
    np.save(folder / 'mnist_test_seq.npy', np.random.default_rng(0).random((8, 12, 64, 64), dtype=np.float32))


def truncated_test_set(folder):
    path = folder / 'mnist_test_seq.npy'
    path.write_bytes(path.read_bytes()[:5000])


def wrong_shape_test_set(folder):
    np.save(folder / 'mnist_test_seq.npy', np.zeros((8, 12, 32, 32), dtype=np.uint8))


def corrupt_train_gzip(folder):
    path = folder / 'train-images-idx3-ubyte.gz'
    path.write_bytes(path.read_bytes()[:100])


DAMAGED = {
    'float32 in [0, 1]': (float_test_set, r'mnist_test_seq.npy holds float32 .*expected uint8'),
    'truncated npy': (truncated_test_set, r'mnist_test_seq.npy is not a complete .npy array'),
    'wrong shape': (wrong_shape_test_set, r'mnist_test_seq.npy holds uint8 \(8, 12, 32, 32\).*64, 64\)'),
    'corrupt gzip': (corrupt_train_gzip, r'train-images-idx3-ubyte.gz is not a readable \(gzip\) idx3 file'),
}


@pytest.mark.parametrize('case', sorted(DAMAGED))
def test_damaged_files_are_named_before_openstl_reads_them(case, openstl, tmp_path):
    damage, expected = DAMAGED[case]
    damage(openstl_layout(tmp_path / 'data'))
    with pytest.raises(DataFileError, match=expected) as error:
        build_dataloaders(data_config(tmp_path))
    assert f'tools/prepare_data.py mmnist --data-root {tmp_path / "data"}' in str(error.value)


def test_empty_kth_folder_is_as_missing_as_none(openstl, tmp_path):
    config = dict(data_config(tmp_path), dataname='kth', in_shape=[4, 1, 64, 64])
    with pytest.raises(MissingFileError) as missing:
        build_dataloaders(config)
    (tmp_path / 'data' / 'kth').mkdir(parents=True)
    with pytest.raises(MissingFileError) as empty:
        build_dataloaders(config)
    assert str(empty.value) == str(missing.value) and 'KTH not found' in str(empty.value)


def test_longer_test_sequences_go_to_the_plugins_loader(openstl, tmp_path):
    openstl_layout(tmp_path / 'data', frames=20)     # OpenSTL's loader reads exactly pre + aft = 8 frames
    *_, source = build_dataloaders(data_config(tmp_path, num_workers=0))
    assert source == 'openstl_hrvq'


# ---------------------------------------------------------------- round 2: --resume against the run's record
def record_of(ckpts):
    return {name: (ckpts.parent / name).read_bytes() for name in ('config.py', 'model_param.json')}


@pytest.mark.parametrize('flags, expected', [
    (['--cfg-options', 'vq_hidden=12'], r"--resume: vq_hidden was 8 when .*last.ckpt was trained and is 12 now, which "
                                         r"changes the model's weights: keep vq_hidden=8"),
    (['--sched', 'cosine'], r"--resume: sched was 'constant' .* is 'cosine' now, but the checkpoint restores the "
                            r"optimizer and schedule of sched='constant'"),
])
def test_resume_refuses_a_changed_shape_or_schedule_and_keeps_the_record(trained, tmp_path, capsys, flags, expected):
    ckpts = copy_of(trained, tmp_path)
    record, last = record_of(ckpts), (ckpts / 'last.ckpt').read_bytes()
    assert main(tiny_argv(tmp_path, '--resume', '--epoch', '3', *flags)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and re.search(expected, err), err
    assert record_of(ckpts) == record and (ckpts / 'last.ckpt').read_bytes() == last
    assert not (ckpts / 'interrupted.ckpt').exists()


def test_resume_from_another_configs_checkpoint_names_the_key(trained, tmp_path, capsys):
    other = trained / 'work_dirs' / 'tiny' / 'checkpoints' / 'last.ckpt'
    argv = ['-c', tiny_config_file(tmp_path, vq_latent_dim=8), '--res_dir', str(tmp_path / 'work_dirs'),
            '--ex_name', 'other', '--data_root', str(tmp_path / 'no_data'), '--no_display_method_info',
            '--resume', '--ckpt_path', str(other)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--resume: vq_latent_dim was 4' in err and 'is 8 now' in err, err
    assert not (tmp_path / 'work_dirs' / 'other' / 'config.py').exists()


def test_resume_applies_a_changed_lr_to_the_restored_optimizers_and_records_it(trained, tmp_path):
    ckpts = copy_of(trained, tmp_path)
    resumed = Experiment(tiny_config(tmp_path, '--resume', '--epoch', '3', '--lr', '1e-5'))
    rates = []

    class RecordRates(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            rates.append([group['lr'] for opt in trainer.optimizers for group in opt.param_groups])

    resumed.trainer.callbacks.append(RecordRates())
    resumed.train()
    assert rates and all(rate == pytest.approx(1e-5) for step in rates for rate in step)
    state = torch.load(ckpts / 'last.ckpt', map_location='cpu', weights_only=False)
    assert state['global_step'] == STEPS + 4
    assert all(group['lr'] == pytest.approx(1e-5) for opt in state['optimizer_states'] for group in opt['param_groups'])
    assert '"lr": 1e-05' in (ckpts.parent / 'model_param.json').read_text()
    assert state['hyper_parameters']['lr'] == 1e-5


def test_every_key_of_every_shipped_config_and_dataset_is_in_the_key_table(openstl, capsys):
    """configs/**/*.py, the datasets' parameters (OpenSTL's WeatherBench loader keys included) and --list-keys
    agree: a key a config may set is listed and checked. OpenSTL's model keys (SimVP's) are its model's arguments."""
    import glob
    import inspect

    from openstl_hrvq.api.config import load_config_file
    from openstl_hrvq.api.data import all_dataset_parameters
    from openstl_hrvq.api.validation import RUNNER_KEYS, key_table
    from openstl_hrvq.method_registry import find_method
    paths = sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
    assert len(paths) >= 20
    for path in paths:
        keys = load_config_file(path)
        known = set(key_table(keys['method']))
        if find_method(keys['method']) is None:
            model = next(getattr(openstl.models, name) for name in dir(openstl.models)
                         if name.lower() == f"{keys['method'].lower()}_model")
            known |= set(inspect.signature(model).parameters)
        assert set(keys) <= known, (path, sorted(set(keys) - known))
    dataset_keys = {key for params in all_dataset_parameters().values() for key in params}
    assert {'train_time', 'val_time', 'test_time', 'idx_in', 'idx_out', 'step', 'level'} <= dataset_keys
    assert dataset_keys <= set(RUNNER_KEYS), sorted(dataset_keys - set(RUNNER_KEYS))
    assert main(['--list-keys', '-c', osp.join(REPO, 'configs', 'weather', 't2m_5_625', 'shvqvae.py')]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line and not line.startswith('#')}
    assert dataset_keys <= listed


def test_list_keys_shows_every_key_with_its_default_and_meaning(capsys):
    from openstl_hrvq.methods.shrvqvae_keys import TABLE
    from openstl_hrvq.api.validation import RUNNER_KEYS
    assert main(['--list-keys', '-c', osp.join(REPO, 'configs', 'mmnist', 'shvqvae.py')]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line for line in lines if line and not line.startswith(('#', 'key '))}
    assert set(listed) == set(TABLE) | set(RUNNER_KEYS)
    assert re.match(r"lr +0\.0003 +a number > 0 +applied +learning rate of every stage", listed['lr'])
    assert re.match(r"sched +'constant' +one of .* +refused \(optimizer\)", listed['sched'])
    assert 'refused when set' in listed['drop'] and 'not read: the model has no dropout' in listed['drop']
