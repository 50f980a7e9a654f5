"""Faults from outside the code, made real: signals sent to real processes, a second live process on one
experiment folder, a full disk (a small tmpfs) and a read-only one."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from openstl_hrvq.api.cli import main
from openstl_hrvq.api.lock import lock_experiment
from tests.test_bad_inputs import tiny_argv, tiny_config_file
from tests.helpers import load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)


def start(tool, argv, log):
    return subprocess.Popen([sys.executable, osp.join(REPO, 'tools', tool), *argv], stdout=log,
                            stderr=subprocess.STDOUT, env=ENV, cwd=REPO)


def wait_for(condition, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, 'the process ended before the signal could be sent'
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.1)


def last_line(path):
    return [line for line in path.read_text().splitlines() if line.strip()][-1]


# ---------------------------------------------------------------- signals
def test_sigterm_and_sigint_exit_143_and_130_and_resume_continues_the_stopped_training(tmp_path):
    argv = tiny_argv(tmp_path, '--cfg-options', 'train_size=64', 'ckpt_every_n_steps=2')
    ckpts = tmp_path / 'work_dirs' / 'tiny' / 'checkpoints'
    log = tmp_path / 'train.log'
    with open(log, 'w') as handle:
        process = start('train.py', argv, handle)
        wait_for(lambda: (ckpts / 'last.ckpt').exists(), process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 143, log.read_text()[-2000:]
    assert last_line(log) == (f'error: stopped by SIGTERM (exit status 143); the progress is in {ckpts}: continue '
                              f'with --resume')
    state = torch.load(ckpts / 'interrupted.ckpt', map_location='cpu', weights_only=False)
    total = 2 * 64 // 4
    assert 0 < state['global_step'] < total
    assert main(argv + ['--resume']) == 0
    logs = ''.join(path.read_text() for path in ckpts.parent.glob('train_*.log'))
    assert f"Resuming training from {ckpts / 'interrupted.ckpt'}" in logs
    step, per_epoch = state['global_step'], total // 2
    if step % per_epoch:            # stopped inside an epoch: the runner says what resuming there means
        assert f'The checkpoint is from step {step % per_epoch} of epoch {step // per_epoch}' in logs
    assert torch.load(ckpts / 'last.ckpt', map_location='cpu', weights_only=False)['global_step'] == total
    assert not (ckpts / 'interrupted.ckpt').exists()
    # tools/test.py, stopped while it tests (400 sequences take a while)
    log = tmp_path / 'test.log'
    with open(log, 'w') as handle:
        process = start('test.py', tiny_argv(tmp_path, '--cfg-options', 'test_size=400'), handle)
        wait_for(lambda: 'Testing ' in log.read_text(), process)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130, log.read_text()[-2000:]
    assert last_line(log) == 'error: stopped by SIGINT (exit status 130)'


# ---------------------------------------------------------------- one live run per experiment folder
HOLD_LOCK = ('import sys, time; from openstl_hrvq.api.lock import lock_experiment; lock_experiment(sys.argv[1]); '
             'print("locked", flush=True); time.sleep(600)')


def test_a_second_live_run_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path):
    folder = tmp_path / 'work_dirs' / 'tiny'
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, env=ENV,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        second = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'),
                                 *tiny_argv(tmp_path, '--force')], capture_output=True, text=True, env=ENV,
                                timeout=300)
        assert second.returncode == 2
        err = [line for line in second.stderr.splitlines() if line.strip()]
        assert err[-1].startswith(f'error: {folder} is in use by a running process (PID {holder.pid} on ')
        assert '--force does not stop a running process' in err[-1]
        assert not (folder / 'checkpoints').exists()
    finally:
        holder.kill()          # SIGKILL: the process cannot clean up; its lock file stays behind
        holder.wait()
    assert f'PID {holder.pid}' in (folder / '.lock').read_text()
    lock = lock_experiment(str(folder))            # the stale lock is taken over
    assert f'PID {os.getpid()}' in (folder / '.lock').read_text()
    lock.release()


# ---------------------------------------------------------------- a full disk and a read-only folder
def mount_tmpfs(path, options):
    path.mkdir(parents=True)
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here ({done.stderr.decode().strip()})')
    return path


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB file system of its own (a tmpfs; needs root), unmounted afterwards."""
    disk = mount_tmpfs(tmp_path / f'disk-{uuid.uuid4().hex[:6]}', 'size=8m')
    yield disk
    subprocess.run(['umount', '-l', str(disk)], check=False)


def fill(disk, leave_kib=0):
    """Fill ``disk`` up to ``leave_kib`` free KiB."""
    (disk / 'filler').unlink(missing_ok=True)
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / 'filler', 'wb') as handle:
        handle.write(b'\0' * max(0, free - leave_kib * 1024))


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_full_disk_ends_in_one_line_and_every_earlier_file_stays_loadable(small_disk, tmp_path, capsys):
    argv = tiny_argv(tmp_path, '--res_dir', str(small_disk / 'work_dirs'))
    assert main(argv) == 0
    work = small_disk / 'work_dirs' / 'tiny'
    checkpoints, saved = snapshot(work / 'checkpoints'), snapshot(work / 'saved')
    capsys.readouterr()
    fill(small_disk, leave_kib=64)     # room for logs, not for a checkpoint
    assert main(argv + ['--resume', '--epoch', '3']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1, err
    assert err.startswith(f'error: Cannot write {work / "checkpoints" / "last.ckpt"}: no space left on the device')
    assert f'file system mounted at {small_disk}' in err
    assert snapshot(work / 'checkpoints') == checkpoints          # no interrupted.ckpt, no temporary file
    for name in checkpoints:
        torch.load(work / 'checkpoints' / name, map_location='cpu', weights_only=False)
    # the test's arrays are one set: none is replaced unless all are written
    assert main(argv + ['--test']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'saved/' in err and 'no space left on the device' in err, err
    assert snapshot(work / 'saved') == saved
    assert all(np.load(work / 'saved' / name).size for name in saved if name.endswith('.npy'))
    assert Image.open(work / 'saved' / 'grid.png').size                # the pictures too are whole


def test_prepare_data_on_a_full_disk_writes_nothing_and_a_rerun_completes(small_disk, capsys):
    prepare = load_tool('prepare_data').main
    argv = ['mmnist', '--data-root', str(small_disk / 'data'), '--num-test', '20']
    fill(small_disk, leave_kib=200)    # room for the training digits, not for the test set
    with pytest.raises(SystemExit) as stopped:
        prepare(argv)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('prepare_data: Cannot write ') and 'no space left' in err, err
    folder = small_disk / 'data' / 'moving_mnist'
    assert [path.name for path in folder.iterdir()] in ([], ['train-images-idx3-ubyte.gz'])
    (small_disk / 'filler').unlink()
    prepare(argv)                      # not "already exist"
    assert np.load(folder / 'mnist_test_seq.npy').shape == (20, 20, 64, 64)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can write to: a read-only tmpfs as root (root ignores permission bits), else mode 0555."""
    if os.geteuid() != 0:
        folder = tmp_path / 'read_only'
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = mount_tmpfs(tmp_path / 'read_only', 'size=1m,ro')
    yield folder
    subprocess.run(['umount', '-l', str(folder)], check=False)


def test_a_read_only_res_dir_or_out_is_one_line(read_only_folder, tmp_path, capsys):
    assert main(tiny_argv(tmp_path, '--res_dir', str(read_only_folder))) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f'{read_only_folder / "tiny"} cannot hold files' in err, err
    board = load_tool('leaderboard').cli(['--configs', tiny_config_file(tmp_path), '--baselines',
                                          '--out', str(read_only_folder / 'board')])
    assert board == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(f'error: --out {read_only_folder / "board"} cannot hold'), err
    with pytest.raises(SystemExit):
        load_tool('prepare_data').main(['mmnist', '--data-root', str(read_only_folder / 'data')])
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(f'prepare_data: --data-root {read_only_folder / "data"}'), err


# ---------------------------------------------------------------- figures and videos written atomically
def test_figures_and_named_file_writers_replace_their_target_only_when_complete(tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from openstl_hrvq.files import atomic_path, save_figure
    fig = plt.figure(figsize=(1, 1))
    path = tmp_path / 'figure.png'
    save_figure(fig, str(path), dpi=20)
    plt.close(fig)
    assert path.read_bytes().startswith(b'\x89PNG')
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            assert tmp.endswith('.png') and osp.dirname(tmp) == str(tmp_path)   # beside it, same extension
            open(tmp, 'wb').write(b'partial')
            raise RuntimeError('the encoder died')
    assert path.read_bytes() == before and os.listdir(tmp_path) == ['figure.png']


def test_an_experiment_that_fails_to_build_releases_its_folder(tmp_path, monkeypatch):
    """An error found after the lock is taken (here Lightning refusing the trainer's settings, once the method
    is built) leaves the folder free at once, not when the half-built experiment happens to be collected
    (garbage collection is off: Lightning's objects hold reference cycles)."""
    import fcntl
    import gc

    from openstl_hrvq.api import Experiment
    from openstl_hrvq.errors import ConfigError
    from tests.test_bad_inputs import tiny_config

    def refused(self, *args):
        self.cycle = self            # as the method and Lightning's trainer have
        raise ValueError('a strategy this accelerator lacks')

    monkeypatch.setattr(Experiment, '_trainer', refused)
    enabled = gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(ConfigError, match='a strategy this accelerator lacks'):
            Experiment(tiny_config(tmp_path))
        fd = os.open(tmp_path / 'work_dirs' / 'tiny' / '.lock', os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)          # BlockingIOError while it is held
        finally:
            os.close(fd)
    finally:
        if enabled:
            gc.enable()
