"""The transformed-digit benchmark: data generation, training windows, the protocol, tables and the tool."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from openstl_hrvq import openstl_bridge
from openstl_hrvq.datasets import dataset_parameters, load_data, load_embedded_digits
from openstl_hrvq.datasets import transformed_digits as td
from openstl_hrvq.interpolation import (FRAME_GROUPS, ROWS, TASKS, RowOutputs, evaluate, task_inputs,
                                        write_tables)
from openstl_hrvq.metrics import metric
from tests.helpers import load_tool

REPO = Path(__file__).resolve().parents[1]
TINY_SHRVQVAE = ['vq_layers=2', 'vq_hidden=8', 'vq_res_hidden=4', 'vq_res_blocks=1', 'prior_hidden=8',
                 'prior_blocks=1', 'prior_heads=2', 'no_display_method_info=True']


def marker_sequences(num_sequences=3):
    """uint8 (N, 16, 36, 36) sequences whose frame t (1-based) is filled with the value t."""
    frames = np.arange(1, td.NUM_FRAMES + 1, dtype=np.uint8)
    return np.broadcast_to(frames[None, :, None, None], (num_sequences, td.NUM_FRAMES, td.CANVAS, td.CANVAS)).copy()


def frame_numbers(clip):
    """The marker value (1-based frame number, 0 = blanked) of each frame of a (T, 1, H, W) clip."""
    return [int(round(float(frame.max()) * 255)) for frame in clip]


def test_generation_is_deterministic():
    first = td.generate_split('n3-test')
    td._generated.cache_clear()
    again = td.generate_split('n3-test')
    assert first.shape == (100, 16, 36, 36) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    strengths = td.split_strengths('n3-test')
    assert strengths.min() < 0.2 and strengths.max() > 0.8  # weak and aggressive sequences


def test_splits_use_disjoint_digits_of_the_right_class():
    _, labels = load_embedded_digits()
    ids = {name: td.split_digit_ids(name) for name in td.SPLITS}
    assert [len(ids[name]) for name in ('n6-train', 'n6-test', 'n3-test')] == [400, 400, 100]
    assert set(labels[ids['n6-train']]) == {6} and set(labels[ids['n6-test']]) == {6}
    assert set(labels[ids['n3-test']]) == {3}
    assert not set(ids['n6-train']) & set(ids['n6-test'])
    assert len(set(ids['n6-train'])) == 400 and len(set(ids['n3-test'])) == 100


def test_window_counts():
    assert len(td.window_table(400, 'n6')) == 400 * 4
    assert len(td.window_table(400, 'n6-all')) == 400 * 4 * 5
    train, test = td.build_window_datasets('n6-all', test_size=10)
    assert len(train) == 8000 and len(test) == 40
    with pytest.raises(ValueError, match='train_set'):
        td.window_table(4, 'n3')


def test_frames_4_and_16_never_reach_training():
    markers = marker_sequences()
    windows = td.window_table(len(markers), 'n6-all')
    dataset = td.TransformedDigitWindows(td.training_frames(markers), windows)
    seen = set()
    for index, (_, _, _, noise, _) in enumerate(windows):
        inputs, targets = dataset[index]
        seen.update(frame_numbers(targets))
        if not noise:
            seen.update(frame_numbers(inputs))
    assert seen - {0} == set(range(5, 16))
    real = td.build_window_datasets('n6', train_size=2)[0].sequences
    np.testing.assert_array_equal(real, td.generate_split('n6-train')[:2, 4:15])


def test_reversed_windows_are_time_reversed():
    markers = marker_sequences(1)
    windows = td.window_table(1, 'n6-all')
    dataset = td.TransformedDigitWindows(td.training_frames(markers), windows)
    forward = frame_numbers(torch.cat(dataset[0]))
    assert forward == list(range(5, 13))
    reversed_rows = np.flatnonzero((windows[:, 2] == 1) & (windows[:, 3] == 0) & (windows[:, 4] < 0))
    assert len(reversed_rows) == 4
    for row in reversed_rows:
        start = int(windows[row, 1])
        assert frame_numbers(torch.cat(dataset[row])) == list(range(12 + start, 4 + start, -1))


def test_training_corruptions_touch_inputs_only():
    sequences = td.training_frames(td.generate_split('n6-train')[:2])
    windows = td.window_table(2, 'n6-all')
    dataset = td.TransformedDigitWindows(sequences, windows)
    clean = {tuple(row[:3]): dataset[index] for index, row in enumerate(windows) if row[3] == 0 and row[4] < 0}
    corrupted = [index for index, row in enumerate(windows) if row[3] or row[4] >= 0]
    assert len(corrupted) == 3 * 8
    for index in corrupted:
        sequence, start, reverse, noise, missing = windows[index]
        inputs, targets = dataset[index]
        clean_inputs, clean_targets = clean[(sequence, start, reverse)]
        assert torch.equal(targets, clean_targets)
        assert not torch.equal(inputs, clean_inputs)
        if missing >= 0:
            assert inputs[missing].abs().max() == 0
        assert torch.equal(inputs, dataset[index][0])  # the same noise every epoch


def test_protocol_inputs_targets_and_variants():
    sequences = td.generate_split('n3-test')[:4]
    frames = torch.from_numpy(sequences.astype(np.float32) / 255).unsqueeze(2)
    interpolation, extrapolation = TASKS
    inputs, target = task_inputs(sequences, interpolation, 'clean', 'n3-test')
    assert torch.equal(inputs, frames[:, [7, 6, 5, 4]]) and torch.equal(target, frames[:, 3:4])
    inputs, target = task_inputs(sequences, extrapolation, 'clean', 'n3-test')
    assert torch.equal(inputs, frames[:, 11:15]) and torch.equal(target, frames[:, 15:16])
    for variant in ('noise', 'miss', 'aug'):
        corrupted, corrupted_target = task_inputs(sequences, interpolation, variant, 'n3-test')
        assert torch.equal(corrupted_target, frames[:, 3:4])
        assert not torch.equal(corrupted, frames[:, [7, 6, 5, 4]])
        again, _ = task_inputs(sequences, interpolation, variant, 'n3-test')
        assert torch.equal(corrupted, again)
        if variant == 'miss':
            blank = corrupted.flatten(2).abs().amax(-1) == 0
            assert blank.sum(1).eq(1).all()


def test_tables_match_metric_on_saved_predictions(tmp_path):
    def copy_nearest_input(inputs):
        return inputs[:, -1:]

    scores, _ = evaluate(copy_nearest_input, eval_size=3, save_dir=str(tmp_path / 'pred'))
    paths = write_tables({'n6': {'copy': scores}}, str(tmp_path))
    markdown = Path(paths['md']).read_text().splitlines()
    header = markdown.index('## Trained on n6: frames 4 and 16 together') + 2
    assert markdown[header] == '| test set | N | MSE | MAE | SSIM |'
    body = [line.split('|')[1:-1] for line in markdown[header + 2:header + 2 + len(ROWS)]]
    assert [cells[0].strip() for cells in body] == list(ROWS)
    assert all(cells[1].strip() == '3' for cells in body)
    with open(paths['csv']) as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(ROWS) * len(FRAME_GROUPS)
    for line in lines:
        saved = RowOutputs.load(str(tmp_path / 'pred' / f"{line['row']}.npz"))
        frames = FRAME_GROUPS[line['frames']]
        expected, _ = metric(saved.preds[:, frames], saved.trues[:, frames], metrics=['mse', 'mae', 'ssim'])
        for name in ('mse', 'mae', 'ssim'):
            assert float(line[name]) == pytest.approx(expected[name], rel=1e-12)
    assert json.loads(Path(paths['json']).read_text())['n6']['copy']['n3']['N'] == 3


def test_dataset_is_registered():
    assert dataset_parameters['tdigits']['train_set'] == 'n6'
    assert dataset_parameters['tdigits_all']['train_set'] == 'n6-all'
    train, val, test = load_data('tdigits_all', 4, 4, 0, './data', train_size=1, test_size=1,
                                 **{k: v for k, v in dataset_parameters['tdigits_all'].items()})
    batch_x, batch_y = next(iter(train))
    assert batch_x.shape == batch_y.shape == (4, 4, 1, 36, 36)
    assert len(train.dataset) == 20 and len(test.dataset) == 4


def test_tool_skips_simvp_without_openstl(monkeypatch):
    tool = load_tool('interp_benchmark')
    monkeypatch.setattr(openstl_bridge, 'openstl_available', lambda: False)
    assert tool.available_methods(['shrvqvae', 'simvp']) == ['shrvqvae']
    with pytest.raises(ValueError, match='No method'):
        tool.available_methods(['simvp'])


def test_tool_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    tool = load_tool('interp_benchmark')
    out = tmp_path / 'out'
    threads = torch.get_num_threads()
    try:
        results = tool.main(['--methods', 'shrvqvae', '--train_sets', 'n6', '--epoch', '2', '--train_size', '2',
                             '--test_size', '1', '--eval_size', '2', '--batch_size', '4', '--device', 'cpu',
                             '--threads', '1', '--figure_rows', 'n3', '--res_dir', str(tmp_path / 'wd'),
                             '--out_dir', str(out), '--shrvqvae-options', *TINY_SHRVQVAE])
    finally:
        torch.set_num_threads(threads)
    assert list(results['n6']) == ['S-HR-VQVAE', 'copy input']
    assert list(results['n6']['S-HR-VQVAE']) == list(ROWS)
    assert '| test set | N | MSE (S-HR-VQVAE) | MAE (S-HR-VQVAE) | SSIM (S-HR-VQVAE) | MSE (copy input)' in (
        out / 'tables.md').read_text()
    assert '| n3-aug | 2 |' in (out / 'tables.md').read_text()
    assert (out / 'figures' / 'shrvqvae_n6_n3.png').stat().st_size > 0
    assert json.loads((out / 'runs.json').read_text())[0]['training_windows'] == 8
