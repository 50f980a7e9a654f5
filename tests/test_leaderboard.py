"""tools/leaderboard.py: well-formed tables and pictures, numbers equal to metric() on the saved predictions,
trivial references, loading checkpoints instead of training, skipped OpenSTL rows, clear errors."""
import csv
import json
import os
import os.path as osp
import signal

import numpy as np
import pytest
from PIL import Image

from openstl_hrvq import openstl_bridge
from openstl_hrvq.benchmark import COLUMNS, build_entries, merge_leaderboards
from openstl_hrvq.benchmark.table import markdown_table
from openstl_hrvq.metrics import metric
from openstl_hrvq.references import REFERENCE_NAMES, all_black, copy_last_frame, mean_frame, reference_predictions
from tests.helpers import TINY_MODEL, load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
HEADERS = [header for _, header, _ in COLUMNS]


def write_config(path, **keys):
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in keys.items()))
    return str(path)


def tiny_configs(folder):
    """The tiny S-HR-VQVAE on embedded-digit Moving MNIST (4 -> 4 frames), and a tiny SimVPv2 when OpenSTL is here."""
    common = dict(in_shape=[4, 1, 64, 64], pre_seq_length=4, aft_seq_length=4, batch_size=4, val_batch_size=4,
                  num_workers=0, limit_val_batches=1)
    model = {key: value for key, value in TINY_MODEL.items() if key not in common}
    files = [write_config(folder / 'tiny_shvqvae.py', method='SHRVQVAE', **model, vq_epochs=1, prior_epochs=1,
                          joint_epochs=0, lr=3e-3, sched='constant', **common)]
    if openstl_bridge.openstl_available():
        files.append(write_config(folder / 'tiny_simvp.py', method='SimVP', model_type='gSTA', hid_S=4, hid_T=8,
                                  N_T=2, N_S=2, spatio_kernel_enc=3, spatio_kernel_dec=3, lr=1e-3,
                                  sched='onecycle', **common))
    return files


def leaderboard_argv(folder, configs, *more):
    return ['--configs', *configs, '--baselines', '--epoch', '2', '--train_size', '4', '--test_size', '4',
            '--data_root', str(folder / 'no_data'), '--device', 'cpu', '--out', str(folder / 'board'),
            '--throughput-batch', '1', '--throughput-repeats', '1', '--animation-samples', '2', *more]


@pytest.fixture(scope='module')
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp('leaderboard')
    configs = tiny_configs(folder)
    result = load_tool('leaderboard').main(leaderboard_argv(folder, configs))
    return folder, configs, result


def test_trivial_references():
    inputs = np.arange(2 * 3 * 1 * 2 * 2, dtype=np.float32).reshape(2, 3, 1, 2, 2)
    copy = copy_last_frame(inputs, 4)
    assert copy.shape == (2, 4, 1, 2, 2) and (copy == inputs[:, -1:]).all()
    mean = mean_frame(inputs, 4)
    assert mean.shape == (2, 4, 1, 2, 2)
    np.testing.assert_allclose(mean[:, 2], (inputs[:, 0] + inputs[:, 1] + inputs[:, 2]) / 3)
    black = all_black(inputs, 4)
    assert black.shape == (2, 4, 1, 2, 2) and black.dtype == inputs.dtype and not black.any()
    assert list(reference_predictions(inputs, 1)) == ['copy-last-frame', 'mean-frame', 'all-black']


def test_tables_are_well_formed(board):
    folder, configs, result = board
    out = folder / 'board'
    md_lines = (out / 'leaderboard.md').read_text().splitlines()
    start = next(i for i, line in enumerate(md_lines) if line.startswith('| Method'))
    header = md_lines[start]
    assert [cell.strip() for cell in header.strip('|').split('|')] == HEADERS
    end = md_lines.index('', start)
    table = [line for line in md_lines[start + 1:end] if line.startswith('| ')]
    assert len(table) == len(configs) + len(REFERENCE_NAMES)
    assert all(line.count('|') == len(HEADERS) + 1 for line in table)
    with open(out / 'leaderboard.csv') as handle:
        rows = list(csv.DictReader(handle))
    assert [key for key, _, _ in COLUMNS] == list(rows[0])[:len(COLUMNS)]
    assert [row['method'] for row in rows][-len(REFERENCE_NAMES):] == list(REFERENCE_NAMES)
    data = json.loads((out / 'leaderboard.json').read_text())
    assert data['meta']['test_sequences'] == 4 and data['meta']['epoch'] == 2
    first = data['rows'][0]
    assert first['status'] == 'ok' and first['epochs'] == 2 and first['train_steps'] == 2
    assert first['params'] > 0 and first['flops'] > 0 and first['throughput'] > 0 and first['train_time_s'] > 0
    if first['lpips'] is None:      # no AlexNet weights here: n/a with the reason
        assert first['lpips_note'] and 'LPIPS n/a' in (out / 'leaderboard.md').read_text()


def test_numbers_are_metric_of_the_saved_predictions(board):
    folder, configs, result = board
    rows = {row['label']: row for row in result['rows']}
    for path in configs:
        label = osp.splitext(osp.basename(path))[0]
        saved = folder / 'board' / label / 'saved'
        preds, trues = np.load(saved / 'preds.npy'), np.load(saved / 'trues.npy')
        expected, _ = metric(preds, trues, 0.0, 1.0, metrics=['mse', 'mae', 'ssim', 'psnr'])
        for name, value in expected.items():
            assert rows[label][name] == pytest.approx(value, rel=1e-9), (label, name)
    inputs = np.load(folder / 'board' / 'tiny_shvqvae' / 'saved' / 'inputs.npy')
    trues = np.load(folder / 'board' / 'tiny_shvqvae' / 'saved' / 'trues.npy')
    copy, _ = metric(np.repeat(inputs[:, -1:], 4, 1), trues, metrics=['mse', 'mae', 'ssim', 'psnr'])
    assert rows['copy-last-frame']['mse'] == pytest.approx(copy['mse'])
    assert rows['copy-last-frame']['ssim'] == pytest.approx(copy['ssim'])
    assert rows['mean-frame']['params'] == 0
    black, _ = metric(np.zeros_like(trues), trues, metrics=['mse'])
    assert rows['all-black']['mse'] == pytest.approx(black['mse'])


def test_pictures_exist_and_decode(board):
    folder, configs, result = board
    with Image.open(folder / 'board' / 'leaderboard_grid.png') as grid:
        # two sequences of (inputs, truth, every row) frames of 64 px, plus padding and labels
        assert grid.size[0] > 4 * 64 and grid.size[1] > 2 * (2 + len(configs) + len(REFERENCE_NAMES)) * 64
    for label in [osp.splitext(osp.basename(path))[0] for path in configs] + list(REFERENCE_NAMES):
        with Image.open(folder / 'board' / 'animations' / f'{label}.gif') as gif:
            assert gif.n_frames == 8


def test_load_reuses_checkpoints_and_merge_combines_runs(board):
    folder, configs, result = board
    checkpoint = folder / 'board' / 'tiny_shvqvae' / 'checkpoints' / 'best.ckpt'
    again = load_tool('leaderboard').main(leaderboard_argv(folder, configs[:1], '--load', '--no-references',
                                                           '--out', str(folder / 'loaded'),
                                                           '--ckpt', f'tiny_shvqvae={checkpoint}'))
    before, after = result['rows'][0], again['rows'][0]
    assert after['mse'] == pytest.approx(before['mse']) and after['train_time_s'] == before['train_time_s']
    boards = [str(folder / 'board' / 'leaderboard.json'), str(folder / 'loaded' / 'leaderboard.json')]
    with pytest.raises(ValueError, match=r"'tiny_shvqvae' appears twice, with the same budget"):
        merge_leaderboards(boards, str(folder / 'merged'))
    # the same config under another budget is kept, its label naming the budget
    longer = json.loads((folder / 'loaded' / 'leaderboard.json').read_text())
    longer['rows'][0]['epochs'] = 3
    (folder / 'longer').mkdir()
    (folder / 'longer' / 'leaderboard.json').write_text(json.dumps(longer))
    both = merge_leaderboards([boards[0], str(folder / 'longer' / 'leaderboard.json')], str(folder / 'both'))
    labels = [row['label'] for row in both['rows']]
    assert 'tiny_shvqvae' in labels and 'tiny_shvqvae (3x4)' in labels
    merged = merge_leaderboards(boards[:1], str(folder / 'merged'))
    assert [row['mse'] for row in merged['rows']] == [row['mse'] for row in result['rows']]
    assert osp.isfile(merged['files']['grid'])
    missing = load_tool('leaderboard').main(leaderboard_argv(folder, configs[:1], '--load', '--ckpt',
                                                             f'tiny_shvqvae={folder / "missing.ckpt"}'))
    assert missing['rows'][0]['status'].startswith('failed: FileNotFoundError: No checkpoint at')


def test_extra_decodings_add_rows_from_the_same_checkpoint(board):
    """--decodings argmax mean3 tests the trained checkpoint again with the mean of 3 sampled rollouts (the
    config's own decoding, argmax, adds no second row); each row names its decoding, the two rows score their
    own (different) predictions, and the per-frame tables list both."""
    folder, configs, result = board
    checkpoint = folder / 'board' / 'tiny_shvqvae' / 'checkpoints' / 'best.ckpt'
    both = load_tool('leaderboard').main(leaderboard_argv(folder, configs[:1], '--load', '--no-references',
                                                          '--decodings', 'argmax', 'mean3',
                                                          '--out', str(folder / 'sampled'),
                                                          '--ckpt', f'tiny_shvqvae={checkpoint}'))
    rows = {row['label']: row for row in both['rows']}
    assert set(rows) == {'tiny_shvqvae', 'tiny_shvqvae_mean3'}
    assert rows['tiny_shvqvae']['decoding'] == 'argmax'
    assert rows['tiny_shvqvae_mean3']['decoding'] == 'mean of 3 samples (T=1)'
    assert rows['tiny_shvqvae']['mse'] == pytest.approx(result['rows'][0]['mse'])
    saved = folder / 'sampled' / 'tiny_shvqvae_mean3' / 'saved'
    preds, trues = np.load(saved / 'preds.npy'), np.load(saved / 'trues.npy')
    assert not np.array_equal(preds, np.load(folder / 'board' / 'tiny_shvqvae' / 'saved' / 'preds.npy'))
    expected, _ = metric(preds, trues, 0.0, 1.0, metrics=['mse', 'ssim'], per_frame=True)
    assert rows['tiny_shvqvae_mean3']['mse'] == pytest.approx(expected['mse'], rel=1e-9)
    per_frame = rows['tiny_shvqvae_mean3']['per_frame']
    assert per_frame['mse'] == pytest.approx(list(expected['per_frame']['mse'].mean(axis=0)), rel=1e-9)
    assert per_frame['ssim'] == pytest.approx(list(expected['per_frame']['ssim'].mean(axis=0)), rel=1e-9)
    report = (folder / 'sampled' / 'leaderboard.md').read_text()
    assert '| mean of 3 samples (T=1) |' in report and '## MSE per predicted frame' in report
    with pytest.raises(ValueError, match='Unknown decoding'):
        load_tool('leaderboard').main(leaderboard_argv(folder, configs[:1], '--decodings', 'mean1'))


def test_openstl_rows_are_skipped_with_a_reason_without_openstl(monkeypatch, tmp_path):
    monkeypatch.setattr(openstl_bridge, 'openstl_available', lambda: False)
    simvp = write_config(tmp_path / 'simvp.py', method='SimVP', model_type='gSTA')
    entries = build_entries([simvp], ['simvp'], 'mmnist')
    assert all('not importable' in entry.skip_reason for entry in entries)
    assert entries[0].display == 'SimVPv2 (gSTA)'


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        build_entries([str(tmp_path / 'nope.py')], [], 'mmnist')
    with pytest.raises(ValueError, match="Unknown baseline 'predrnn3'"):
        build_entries([], ['predrnn3'], 'mmnist')
    tool = load_tool('leaderboard')
    with pytest.raises(ValueError, match='LABEL:key=value'):
        tool.parse_overrides(['epoch=3'])
    assert tool.parse_overrides(['a:epoch=3', 'a:lr=0.1']) == {'a': {'epoch': 3, 'lr': 0.1}}
    assert markdown_table([{'method': 'x', 'mse': None}]).splitlines()[-1].count('n/a') == len(COLUMNS) - 1


def test_quality_preset_is_the_equal_budget_comparison_and_flags_beside_it_win(monkeypatch):
    tool = load_tool('leaderboard')
    seen = {}
    monkeypatch.setattr(tool, 'build_entries', lambda configs, baselines, dataname: seen.update(
        configs=configs, baselines=baselines) or [type('Entry', (), {'label': label})()
                                                  for label in ('shvqvae_quick', 'SimVP_gSTA')])
    monkeypatch.setattr(tool, 'run_leaderboard', lambda entries, budget, out, options: seen.update(
        budget=budget, out=out, options=options) or {'files': {'md': osp.join(REPO, 'README.md')}})
    tool.main(['--preset', 'quality', '--seed', '1', '--override', 'SimVP_gSTA:epoch=3'])
    assert seen['configs'] == ['configs/mmnist/shvqvae_quick.py'] and seen['baselines'] == ['simvp']
    budget = seen['budget']
    assert (budget.epoch, budget.train_size, budget.test_size, budget.seed) == (7, 1024, 256, 1)
    assert seen['options'].overrides['SimVP_gSTA'] == {'hid_S': 16, 'hid_T': 64, 'N_T': 4, 'lr': 0.001, 'epoch': 3}
    assert seen['options'].decodings == ('argmax', 'mean16') and seen['options'].cfg_options['limit_val_batches'] == 4


def test_preset_overrides_of_an_entry_left_out_are_dropped(monkeypatch):
    tool = load_tool('leaderboard')
    seen = {}
    monkeypatch.setattr(tool, 'build_entries', lambda configs, baselines, dataname: [
        type('Entry', (), {'label': 'shvqvae_quick'})()] if not baselines else [])
    monkeypatch.setattr(tool, 'run_leaderboard', lambda entries, budget, out, options: seen.update(
        options=options) or {'files': {'md': osp.join(REPO, 'README.md')}})
    tool.main(['--preset', 'quality', '--baselines'])
    assert seen['options'].overrides == {}
    tool.main(['--preset', 'quality', '--baselines', '--override', 'nope:epoch=3'])
    assert seen['options'].overrides == {'nope': {'epoch': 3}}   # a user's own override stays (and is refused)


def test_a_failing_entry_is_a_row_and_a_rerun_reuses_what_finished(tmp_path, capsys, monkeypatch):
    good = write_config(tmp_path / 'good.py', method='SHRVQVAE', **dict(TINY_MODEL, in_shape=[4, 1, 64, 64]),
                        vq_epochs=1, prior_epochs=1, batch_size=4, val_batch_size=4, num_workers=0)
    bad = write_config(tmp_path / 'bad.py', method='SHRVQVAE', **dict(TINY_MODEL, in_shape=[4, 3, 64, 64]),
                       vq_epochs=1, prior_epochs=1, batch_size=4, val_batch_size=4, num_workers=0)
    tool = load_tool('leaderboard')
    argv = leaderboard_argv(tmp_path, [good, bad], '--no-references')
    assert tool.cli(argv) == 1
    err = capsys.readouterr().err.split('\r')[-1].strip()     # after the progress bars
    assert '\n' not in err and err.startswith('error: 1 entry failed') and "bad (failed: ConfigError: Config " \
        "key 'in_shape' must be [T, 1, 64, 64]" in err, err
    rows = {row['label']: row for row in json.loads((tmp_path / 'board' / 'leaderboard.json').read_text())['rows']}
    assert rows['good']['status'] == 'ok' and rows['good']['mse'] > 0
    assert rows['bad']['status'].startswith('failed: ConfigError')
    assert '| failed: ConfigError' in (tmp_path / 'board' / 'leaderboard.md').read_text()
    # the same command again: the finished entry is reused, not retrained or retested
    best = tmp_path / 'board' / 'good' / 'checkpoints' / 'best.ckpt'
    written = best.stat().st_mtime_ns
    monkeypatch.setattr(tool, 'build_entries', lambda configs, baselines, dataname: build_entries([good], [], dataname))
    again = tool.main(argv)
    assert best.stat().st_mtime_ns == written
    assert again['rows'][0]['mse'] == rows['good']['mse'] and again['rows'][0]['train_time_s'] == rows['good']['train_time_s']
    # --force trains it again
    forced = tool.main(argv + ['--force'])
    assert best.stat().st_mtime_ns != written and forced['rows'][0]['train_time_s'] != rows['good']['train_time_s']


def test_sigterm_stops_the_leaderboard_with_status_143(tmp_path, capsys, monkeypatch):
    from openstl_hrvq.api import Experiment
    train = Experiment.train

    def signalled_train(self):
        os.kill(os.getpid(), signal.SIGTERM)          # a real signal, handled by the leaderboard's handler
        return train(self)

    monkeypatch.setattr(Experiment, 'train', signalled_train)
    assert load_tool('leaderboard').cli(leaderboard_argv(tmp_path, tiny_configs(tmp_path)[:1])) == 143
    assert capsys.readouterr().err.split('\r')[-1].strip().endswith('error: stopped by SIGTERM (exit status 143); run the same command again '
                                            'to continue')
    assert not (tmp_path / 'board' / 'leaderboard.json').exists()


def test_load_of_another_configs_checkpoint_is_a_row_naming_the_key(board, capsys):
    folder, configs, result = board
    checkpoint = folder / 'board' / 'tiny_shvqvae' / 'checkpoints' / 'best.ckpt'
    argv = leaderboard_argv(folder, configs[:1], '--load', '--no-references', '--out', str(folder / 'other'),
                            '--ckpt', f'tiny_shvqvae={checkpoint}', '--override', 'tiny_shvqvae:vq_hidden=12')
    assert load_tool('leaderboard').cli(argv) == 1
    row = json.loads((folder / 'other' / 'leaderboard.json').read_text())['rows'][0]
    assert row['status'].startswith(f'failed: CheckpointError: Checkpoint {checkpoint} was trained with ')
    assert 'vq_hidden=8 vs 12' in row['status']


def test_an_entry_that_raises_leaves_its_folder_unlocked_for_the_rerun(tmp_path, capsys, monkeypatch):
    """The experiment lock is released however an entry ends. Garbage collection is off, as it may be in a long
    leaderboard: a failed entry's experiment (Lightning's objects hold cycles) is not collected, so only an explicit
    release lets another process (here: a second open file description) or the rerun lock the folder."""
    import fcntl
    import gc

    from openstl_hrvq.api import Experiment
    from openstl_hrvq.api.lock import LOCK_FILE
    config = tiny_configs(tmp_path)[:1]
    train = Experiment.train

    def failing_train(self):
        raise RuntimeError('the entry broke')

    tool = load_tool('leaderboard')
    argv = leaderboard_argv(tmp_path, config, '--no-references')
    enabled = gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(Experiment, 'train', failing_train)
        assert tool.cli(argv) == 1
        assert 'the entry broke' in capsys.readouterr().err
        lock = os.open(tmp_path / 'board' / 'tiny_shvqvae' / LOCK_FILE, os.O_RDWR)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)          # BlockingIOError while a run holds it
        finally:
            os.close(lock)
        monkeypatch.setattr(Experiment, 'train', train)
        rerun = tool.main(argv)
    finally:
        if enabled:
            gc.enable()
    assert rerun['rows'][0]['status'] == 'ok' and rerun['rows'][0]['mse'] > 0
