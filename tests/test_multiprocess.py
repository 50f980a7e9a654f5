"""Multi-process runs: N processes on the chosen accelerator, the whole test set scored once and in order,
one log per rank, impossible combinations refused in one line."""
import fcntl
import logging
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from openstl_hrvq.api import create_parser, resolve_config
from openstl_hrvq.api.cli import main, run
from openstl_hrvq.api import data as runner_data
from openstl_hrvq.api.distributed import resolve_devices, resolve_strategy
from openstl_hrvq.api.experiment import setup_logging
from openstl_hrvq.api.lock import LOCK_FILE, lock_experiment
from openstl_hrvq.datasets import loaders
from openstl_hrvq.datasets.loaders import ContiguousSplitSampler
from openstl_hrvq.distributed_utils import launcher_rank
from openstl_hrvq.errors import BusyError
from tests.openstl_layouts import write_taxibj
from tests.test_reliability import wait_for
from tests.test_runner import REPO, argv


def test_two_cpu_processes_score_every_test_sequence_once_as_one_process_does(tmp_path):
    """2 CPU processes over gloo (Lightning's launcher re-runs the script), then a 1-process test of the same
    checkpoint: the saved arrays hold every test sequence once, in order, and the predictions are equal."""
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), *argv(tmp_path, '--device', 'cpu', '--devices', '2',
                                                                          '--dist')]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert output.count('Test metrics (8 sequences)') == 1          # scored and printed once, on the whole set
    folder = tmp_path / 'work_dirs' / 'tiny'
    logs = sorted(path.name for path in folder.glob('train_*.log'))
    assert len(logs) == 2 and logs[1].endswith('_rank1.log') and 'rank' not in logs[0]
    two = {name: np.load(folder / 'saved' / f'{name}.npy') for name in ('inputs', 'trues', 'preds')}

    config = resolve_config(vars(create_parser().parse_args(argv(tmp_path))))
    inputs, trues, _ = runner_data.test_arrays(config)
    np.testing.assert_array_equal(two['inputs'], inputs)            # every test sequence once, in dataset order
    np.testing.assert_array_equal(two['trues'], trues)
    one = run(argv(tmp_path, '--device', 'cpu', '--test'))
    np.testing.assert_array_equal(np.load(folder / 'saved' / 'preds.npy'), two['preds'])
    assert f"mse={one['mse']:.4f}" in output                      # the 2-process run printed the same score


def group_ends(group: int, timeout: float = 60.0) -> bool:
    """Whether every process of ``group`` has ended within ``timeout`` seconds (a hang guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_sigterm_to_a_two_process_run_stops_every_rank_and_resume_finishes_it(tmp_path):
    """What a scheduler does to a job: SIGTERM to the whole process group of a 2-process run. Both ranks stop at the
    same step (the launcher's command exits 143, no process is left), rank 0 writes interrupted.ckpt, and a
    resumed 2-process run ends at the uninterrupted run's step count."""
    flags = ('--device', 'cpu', '--devices', '2', '--cfg-options', 'train_size=400', 'ckpt_every_n_steps=5')
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), *argv(tmp_path, *flags)]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    ckpts = tmp_path / 'work_dirs' / 'tiny' / 'checkpoints'
    log = tmp_path / 'train.log'
    with open(log, 'w') as handle:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        wait_for(lambda: (ckpts / 'last.ckpt').exists(), process)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=120) == 143, log.read_text()[-3000:]
    assert log.read_text().count('error: stopped by SIGTERM (exit status 143)') == 2      # one line per rank
    assert group_ends(process.pid), 'a rank outlived the launcher'
    # 400 sequences, 2 ranks, batch 4, 2 epochs: 50 steps per rank and epoch
    assert 0 < torch.load(ckpts / 'interrupted.ckpt', map_location='cpu', weights_only=False)['global_step'] < 100
    done = subprocess.run(command + ['--resume'], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert torch.load(ckpts / 'last.ckpt', map_location='cpu', weights_only=False)['global_step'] == 100


def test_plain_ddp_on_the_cpu_trains_shrvqvae_through_its_stages(tmp_path):
    """--strategy ddp: S-HR-VQVAE's stages freeze sub-models, so plain DDP failed at its second step."""
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), *argv(tmp_path, '--device', 'cpu',
                                                                          '--strategy', 'ddp')]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'training stage "prior"' in done.stdout + done.stderr
    assert (tmp_path / 'work_dirs' / 'tiny' / 'saved' / 'preds.npy').is_file()


def test_contiguous_split_covers_the_set_once_in_order(monkeypatch):
    sampler = ContiguousSplitSampler(range(10))
    assert list(sampler) == list(range(10))
    parts = []
    for rank in range(3):
        monkeypatch.setattr(loaders, '_world', lambda rank=rank: (3, rank))
        parts.append(list(sampler))
        assert len(sampler) == len(parts[-1])
    assert sum(parts, []) == list(range(10)) and [len(part) for part in parts] == [3, 3, 4]


@pytest.mark.parametrize('flags, message', [
    (['--device', 'cpu', '--gpus', '0', '1'], '--gpus 0 1 asks for CUDA devices but the run is on the CPU'),
    (['--device', 'cpu', '--dist'], '--dist asks for a distributed run but only one process would run'),
    (['--device', 'cpu', '--strategy', 'fsdp'], 'strategy `fsdp` requires a GPU accelerator'),
    (['--device', 'cpu', '--strategy', 'nope'], "Unknown --strategy 'nope'"),
    (['--device', 'cpu', '--devices', '0'], "'devices' must be an integer >= 1"),
])
def test_impossible_combinations_are_one_line(tmp_path, capsys, flags, message):
    assert main(argv(tmp_path, *flags)) == 2
    error = capsys.readouterr().err.strip()
    assert error.count('\n') == 0 and message in error


def test_devices_and_strategy_follow_the_flags_and_the_launcher(monkeypatch):
    config = {'method': 'SHRVQVAE', 'gpus': [0], 'devices': None, 'num_nodes': 1, 'strategy': 'auto', 'dist': False}
    assert resolve_devices(config, 'cpu') == 1 and resolve_strategy(config, 1) == 'auto'
    two = dict(config, devices=2)
    assert resolve_devices(two, 'cpu') == 2
    # S-HR-VQVAE's stages freeze sub-models: its DDP must allow parameters without a gradient.
    assert resolve_strategy(two, 2) == 'ddp_find_unused_parameters_true'
    assert resolve_strategy(dict(config, strategy='ddp'), 1) == 'ddp_find_unused_parameters_true'
    assert resolve_strategy(dict(config, method='simvp', strategy='ddp'), 2) == 'ddp'
    assert resolve_strategy(dict(config, num_nodes=2), 1) == 'ddp_find_unused_parameters_true'
    for name in ('TORCHELASTIC_RUN_ID', 'SLURM_NTASKS', 'NODE_RANK', 'MASTER_ADDR'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match='--num_nodes 2 needs a launcher on every node'):
        resolve_devices(dict(config, num_nodes=2), 'cpu')
    monkeypatch.setenv('TORCHELASTIC_RUN_ID', 'test')
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    assert resolve_devices(config, 'cpu') == 2                   # torchrun --nproc_per_node 2
    with pytest.raises(ValueError, match='launcher started 2 processes per node but the run asks for 3'):
        resolve_devices(dict(config, devices=3), 'cpu')


def test_dist_builds_openstls_loaders_before_any_process_group(openstl, tmp_path):
    write_taxibj(tmp_path / 'data', np.random.default_rng(0))
    config = resolve_config({'config_file': osp.join(REPO, 'configs', 'taxibj', 'shvqvae.py'), 'dist': True,
                             'data_root': str(tmp_path / 'data'), 'num_workers': 0})
    train, val, test, source = runner_data.build_dataloaders(config)
    assert source == 'openstl' and len(test.dataset) == 6 and next(iter(train))[0].shape[1:] == (4, 2, 32, 32)


def test_ranks_above_zero_log_to_their_own_file_and_keep_the_console_quiet(tmp_path):
    root = logging.getLogger()
    saved = list(root.handlers)
    levels = {handler: handler.level for handler in saved}
    try:
        setup_logging(str(tmp_path), 'train', rank=1)
        logging.getLogger('openstl_hrvq.test').info('from rank 1')
        files = [handler for handler in root.handlers if isinstance(handler, logging.FileHandler)]
        assert len(files) == 1 and files[0].baseFilename.endswith('_rank1.log')
        files[0].flush()
        assert 'from rank 1' in open(files[0].baseFilename).read()
        consoles = [handler for handler in root.handlers if isinstance(handler, logging.StreamHandler)
                    and not isinstance(handler, logging.FileHandler)]
        assert consoles and all(handler.level == logging.WARNING for handler in consoles)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            handler.setLevel(levels[handler])
            root.addHandler(handler)


LAUNCHER_VARIABLES = ('RANK', 'LOCAL_RANK', 'NODE_RANK', 'GROUP_RANK', 'SLURM_PROCID')


@pytest.mark.parametrize('env, processes_per_node, rank', [
    ({}, 1, 0),                                                  # no launcher
    ({'NODE_RANK': '0', 'LOCAL_RANK': '0'}, 1, 0),               # Lightning's launcher, 2 nodes x 1 process
    ({'NODE_RANK': '1', 'LOCAL_RANK': '0'}, 1, 1),
    ({'NODE_RANK': '1'}, 2, 2),                                  # node 1's first process, before it launches
    ({'NODE_RANK': '1', 'LOCAL_RANK': '1'}, 2, 3),
    ({'RANK': '1', 'LOCAL_RANK': '0', 'GROUP_RANK': '1'}, 1, 1),  # torchrun, 2 nodes x 1 process
    ({'RANK': '0', 'LOCAL_RANK': '0'}, 1, 0),
    ({'SLURM_PROCID': '1'}, 1, 1),                               # srun, one task a node
])
def test_the_global_rank_not_local_rank_decides_which_process_is_rank_zero(monkeypatch, env, processes_per_node,
                                                                           rank):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launcher_rank(processes_per_node) == rank
    assert (launcher_rank() == 0) == (rank == 0)              # rank 0 is known without the processes per node


def test_only_global_rank_zero_takes_the_experiment_lock_on_two_nodes(monkeypatch, tmp_path):
    """2 nodes x 1 process on one shared folder: both have LOCAL_RANK=0; node 1's process must not fight node 0's
    for the lock (the run would fail as 'in use'), and node 0's holds it."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    node0 = os.open(tmp_path / LOCK_FILE, os.O_RDWR | os.O_CREAT)    # node 0's process holds the folder
    fcntl.flock(node0, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        monkeypatch.setenv('NODE_RANK', '1')
        monkeypatch.setenv('LOCAL_RANK', '0')
        lock_experiment(str(tmp_path)).release()                      # no BusyError
        monkeypatch.setenv('NODE_RANK', '0')
        with pytest.raises(BusyError, match='is in use by a running process'):
            lock_experiment(str(tmp_path))                            # a second rank 0 is a second run
    finally:
        os.close(node0)
    lock = lock_experiment(str(tmp_path))
    assert f'PID {os.getpid()}' in (tmp_path / LOCK_FILE).read_text()
    lock.release()
