"""One leaderboard: several entries on one dataset with one budget and seed, the trivial references, pictures.

:func:`run_leaderboard` trains (or loads) and tests every entry through the plugin's runner, scores the
saved predictions and the trivial references with the same metric call on the same test sequences, draws
the prediction grid and one animation per row, and writes ``leaderboard.{md,csv,json}``.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from openstl_hrvq.api.data import all_dataset_parameters, test_arrays
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.benchmark.entries import Entry, openstl_root
from openstl_hrvq.benchmark.runner import (Budget, CostProtocol, EntryRun, entry_config, finished_run, load_saved,
                                           run_entry)
from openstl_hrvq.benchmark.scoring import (leaderboard_metrics, lpips_unavailable_reason, score_predictions,
                                           table_scores)
from openstl_hrvq.benchmark.table import read_rows, write_tables
from openstl_hrvq.files import ensure_writable_folder
from openstl_hrvq.method_registry import find_method
from openstl_hrvq.models.shrvqvae_model import decoding_keys, describe_decoding
from openstl_hrvq.references import reference_predictions
from openstl_hrvq.visualization import (animation_frames, prediction_grid, save_animation, save_image,
                                        unit_range)

log = logging.getLogger(__name__)

GRID_FILE = 'leaderboard_grid.png'
ANIMATION_FOLDER = 'animations'


@dataclass
class TestSet:
    """The test sequences every row is scored on: inputs ``(N, T_in, C, H, W)``, trues ``(N, S, C, H, W)``."""

    inputs: np.ndarray
    trues: np.ndarray
    mean: object = None
    std: object = None


@dataclass
class LeaderboardOptions:
    """How to run the entries beyond the shared :class:`Budget`.

    Attributes:
        load: test existing checkpoints instead of training.
        checkpoints: label -> checkpoint path (default ``<out>/<label>/checkpoints/best.ckpt``).
        cfg_options: config overrides applied to every entry.
        overrides: label -> config overrides for that entry only (stated in the table's notes).
        references: add a row for each trivial reference (:mod:`openstl_hrvq.references`).
        grid_samples: test sequences shown in the grid; animation_samples: sequences per animation.
        animation_format: 'gif' or 'mp4'.
        decodings: extra decodings every S-HR-VQVAE entry's checkpoint is tested with, each a row of its own
            beside the row of the config's decoding: ``'argmax'``, ``'meanN'`` (the mean of N rollouts
            sampled at temperature 1) or ``'meanN-expected'`` (those rollouts rendered from their expected
            codewords); one equal to the config's own decoding adds no row.
        notes: free text added to the notes under the table (e.g. the machine's load).
    """

    load: bool = False
    checkpoints: dict = field(default_factory=dict)
    cfg_options: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    references: bool = True
    protocol: CostProtocol = field(default_factory=CostProtocol)
    grid_samples: tuple = (0, 1)
    animation_samples: int = 4
    animation_format: str = 'gif'
    decodings: tuple = ()
    notes: tuple = ()


def reference_test_set(budget: Budget) -> TestSet:
    """Load the test split of ``budget.dataname`` with the loaders the runner would choose.

    Used for the references when no entry ran; otherwise the first entry's saved test sequences serve.
    """
    parameters = all_dataset_parameters()
    if budget.dataname not in parameters:
        raise ValueError(f"Unknown dataset '{budget.dataname}': choose one of {sorted(parameters)}.")
    config = dict(DEFAULTS, **parameters[budget.dataname])
    config.update(dataname=budget.dataname, data_root=budget.data_root, test_size=budget.test_size)
    inputs, trues, dataset = test_arrays(config)
    return TestSet(inputs, trues, mean=getattr(dataset, 'mean', None), std=getattr(dataset, 'std', None))


def check_same_sequences(saved: dict, test_set: TestSet, label: str) -> None:
    """Raise when an entry was tested on other sequences than the references (a different data set-up)."""
    if saved['trues'].shape != test_set.trues.shape or not np.allclose(saved['trues'], test_set.trues, atol=1e-6):
        raise RuntimeError(f"Entry '{label}' was tested on other sequences than the reference test set "
                           f"({saved['trues'].shape} vs {test_set.trues.shape}): give every config the same "
                           f"dataset, sequence lengths and --test_size.")


def _config_name(entry: Entry) -> str:
    """The config as the table names it: OpenSTL's relative to its checkout, others relative to here."""
    path = osp.abspath(entry.config_file)
    root = openstl_root()
    if root and path.startswith(osp.join(root, '')):
        return 'OpenSTL ' + osp.relpath(path, root)
    if path.startswith(osp.join(os.getcwd(), '')):
        return osp.relpath(path)
    return entry.config_file


def method_row(entry: Entry, run: EntryRun, scores: dict, lpips_reason: str | None) -> dict:
    return dict(method=entry.display, config=_config_name(entry), decoding=run.decoding, label=entry.label, **scores,
                per_frame=run.per_frame,
                params=run.params, flops=run.flops, throughput=run.throughput, train_time_s=run.train_time_s,
                epochs=run.epochs, train_size=run.train_size, train_steps=run.train_steps, status='ok',
                lpips_note=lpips_reason if scores['lpips'] is None else None, work_dir=run.save_dir,
                model_config=run.model_config, source=entry.source)


def failed_row(entry: Entry, error: Exception) -> dict:
    """The row of an entry that failed: its error, in one line, where its scores would be."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ''
    return dict(method=entry.display, config=_config_name(entry), label=entry.label,
                status=f'failed: {type(error).__name__}: {message}', source=entry.source)


def skipped_row(entry: Entry) -> dict:
    return dict(method=entry.display, config=_config_name(entry), label=entry.label,
                status=f'skipped: {entry.skip_reason}', source=entry.source)


def reference_row(name: str, scores: dict, per_frame: dict, lpips_reason: str | None) -> dict:
    return dict(method=name, config='(trivial reference)', decoding='-', label=name, **scores, per_frame=per_frame,
                params=0, flops=0,
                throughput=None, train_time_s=0.0, epochs=0, train_size=0, train_steps=0, status='ok',
                lpips_note=lpips_reason if scores['lpips'] is None else None, source='reference')


def takes_decodings(method: str) -> bool:
    """Whether ``method`` is a registered method whose config keys select its decoding (:func:`decoding_keys`)."""
    registered = find_method(method)
    return registered is not None and set(decoding_keys('argmax')) <= registered.config_keys


def decoding_variant(entry: Entry, spec: str) -> Entry:
    """The row that tests ``entry``'s checkpoint with the decoding ``spec`` (see :func:`decoding_keys`)."""
    return Entry(f'{entry.label}_{spec}', entry.config_file, entry.method, entry.display, entry.source)


def shown_samples(options: LeaderboardOptions) -> int:
    """How many leading test sequences the pictures show (the predictions kept in memory for them)."""
    return max([*options.grid_samples, options.animation_samples - 1]) + 1


def draw_pictures(test_set: TestSet, predictions: dict[str, np.ndarray], out_dir: str,
                  options: LeaderboardOptions) -> dict[str, str]:
    """The prediction grid (PNG) and one animation per row; returns name -> path."""
    samples = [s for s in options.grid_samples if s < len(test_set.inputs)]
    names = list(predictions)
    inputs, trues, *shown_preds = unit_range((test_set.inputs, test_set.trues), test_set.inputs, test_set.trues,
                                             *(predictions[name] for name in names))
    predictions = dict(zip(names, shown_preds))
    paths = {'grid': save_image(prediction_grid(inputs, trues, predictions, samples), osp.join(out_dir, GRID_FILE))}
    shown = tuple(range(min(options.animation_samples, len(inputs))))
    for name, preds in tqdm(predictions.items(), desc='animations', leave=False):
        frames = animation_frames(inputs, trues, preds, name, shown)
        paths[name] = save_animation(frames, osp.join(out_dir, ANIMATION_FOLDER,
                                                      f'{name}.{options.animation_format}'))
    return paths


def _run_entry_and_decodings(entry: Entry, budget: Budget, out_dir: str, overrides: dict,
                             options: LeaderboardOptions) -> list:
    """``[(entry, run), (variant, run), ...]``: the entry trained (or loaded, or reused when it finished with this
    config before) and tested, then its checkpoint tested with each extra decoding."""
    config = entry_config(entry, budget, out_dir, overrides)
    reuse = not options.load and not config.get('force')
    reused = reuse and finished_run(config) is not None     # its decodings were tested on this very checkpoint
    base = run_entry(entry, config, options.load, options.checkpoints.get(entry.label), options.protocol, reuse)
    runs = [(entry, base)]
    for spec in options.decodings if takes_decodings(entry.method) else ():
        keys = decoding_keys(spec)
        if describe_decoding(**keys) == base.decoding:
            continue
        variant = decoding_variant(entry, spec)
        config = entry_config(variant, budget, out_dir, {**overrides, **keys})
        runs.append((variant, run_entry(variant, config, True, base.checkpoint, options.protocol, reused)))
    return runs


def _budget_text(budget: Budget) -> str:
    epoch = f'{budget.epoch} epochs' if budget.epoch else "each config's epochs"
    size = f'{budget.train_size} training sequences per epoch' if budget.train_size else 'the full training set'
    return f'{epoch} x {size}, batch size from each config'


def run_leaderboard(entries: list[Entry], budget: Budget, out_dir: str,
                    options: LeaderboardOptions | None = None) -> dict:
    """Run every entry and the references; write the tables and pictures under ``out_dir``.

    Returns:
        ``{'rows': [...], 'meta': {...}, 'files': {name: path}}``.
    """
    options = options or LeaderboardOptions()
    for spec in options.decodings:
        decoding_keys(spec)
    unknown = set(options.overrides) - {entry.label for entry in entries}
    if unknown:
        raise ValueError(f'--override names {sorted(unknown)}, which are not entries; the entries are '
                         f'{[entry.label for entry in entries]}.')
    ensure_writable_folder(out_dir, '--out')
    test_set = None  # the first tested entry's sequences; every later entry must match them
    lpips_reason = lpips_unavailable_reason()
    rows, predictions, devices = [], {}, set()
    for entry in tqdm(entries, desc='leaderboard entries'):
        if entry.skip_reason:
            log.warning('Skipping %s: %s', entry.label, entry.skip_reason)
            rows.append(skipped_row(entry))
            continue
        # The entry's own test scores the leaderboard's metrics, so its predictions are scored once.
        overrides = {**options.cfg_options, **options.overrides.get(entry.label, {}),
                     'metrics': leaderboard_metrics(lpips_reason is None)}
        try:    # a failing entry becomes a row naming its error; the others still make the table
            runs = _run_entry_and_decodings(entry, budget, out_dir, overrides, options)
            tested_rows, tested_predictions, reference = [], {}, test_set
            for tested, run in runs:
                if reference is None:
                    saved = load_saved(run.save_dir)
                    reference = TestSet(saved['inputs'], saved['trues'], run.test_mean, run.test_std)
                else:
                    saved = load_saved(run.save_dir, ('trues', 'preds'))
                    check_same_sequences(saved, reference, tested.label)
                tested_rows.append(method_row(tested, run, table_scores(run.scores), lpips_reason))
                tested_predictions[tested.label] = saved['preds'][:shown_samples(options)]
        except Exception as error:  # noqa: BLE001 -- any failure of one entry; signals are BaseExceptions
            log.error('%s failed: %s: %s', entry.label, type(error).__name__, error)
            rows.append(failed_row(entry, error))
            continue
        test_set = reference
        devices.update(run.device for _, run in runs)
        rows += tested_rows
        predictions.update(tested_predictions)
    if test_set is None:
        test_set = reference_test_set(budget)
    if options.references:
        for name, preds in reference_predictions(test_set.inputs, test_set.trues.shape[1]).items():
            scores, per_frame = score_predictions(preds, test_set.trues, test_set.mean, test_set.std,
                                                  lpips_reason is None)
            rows.append(reference_row(name, scores, per_frame, lpips_reason))
            predictions[name] = preds
    notes = list(options.notes)
    notes += [f'{label}: budget overridden with ' + ', '.join(f'{key}={value}' for key, value in keys.items())
              for label, keys in options.overrides.items()]
    if options.load:
        notes.append('Loaded existing checkpoints (--load); training times are those recorded when they were trained.')
    meta = {'dataname': budget.dataname, 'test_sequences': int(len(test_set.trues)),
            'pre_seq_length': int(test_set.inputs.shape[1]), 'aft_seq_length': int(test_set.trues.shape[1]),
            'budget': _budget_text(budget), 'epoch': budget.epoch, 'train_size': budget.train_size,
            'test_size': budget.test_size, 'seed': budget.seed,
            'device': ', '.join(sorted(devices)) or budget.device,
            'throughput_protocol': f'sequences/s over {options.protocol.repeats} forward passes of a batch of '
                                   f'{options.protocol.batch} after one warm-up pass',
            'cfg_options': options.cfg_options, 'overrides': options.overrides, 'notes': notes}
    files = write_tables(rows, meta, out_dir)
    if predictions:
        files.update(draw_pictures(test_set, predictions, out_dir, options))
    log.info('Leaderboard written to %s', files['md'])
    return {'rows': rows, 'meta': meta, 'files': files}


def _run_summary(path: str, meta: dict) -> str:
    options = ', '.join(f'{key}={value}' for key, value in (meta.get('cfg_options') or {}).items())
    return f"{osp.dirname(path) or '.'}: {meta['budget']}" + (f'; every entry {options}' if options else '')


def merge_leaderboards(paths: list[str], out_dir: str, options: LeaderboardOptions | None = None) -> dict:
    """One table and one picture from several leaderboard runs scored on the same test sequences.

    Useful when one method gets a longer budget than the others: every method row keeps its own epochs,
    sequences and steps, and the notes name each run's budget. A config that appears in two runs keeps its
    label in the first and gets its budget appended (``label (5x512)``) in the next. The trivial references
    come from the first run; every run's saved test sequences must equal the first run's.

    Returns:
        ``{'rows': [...], 'meta': {...}, 'files': {name: path}}``, like :func:`run_leaderboard`.
    """
    options = options or LeaderboardOptions()
    rows, predictions, test_set, references, metas = [], {}, None, [], []
    budgets = {}                                            # label -> (epochs, train_size) of its row
    for path in paths:
        run_rows, meta = read_rows(path)
        metas.append((path, meta))
        for row in run_rows:
            if row.get('source') == 'reference':
                references += [] if len(metas) > 1 else [row]
                continue
            budget = (row.get('epochs'), row.get('train_size'))
            if row['label'] in budgets:
                if budgets[row['label']] == budget:
                    raise ValueError(f"Row '{row['label']}' appears twice, with the same budget, in the merged "
                                     f"leaderboards: merge runs of different configs or budgets.")
                row = dict(row, label=f"{row['label']} ({budget[0]}x{budget[1]})")
            budgets[row['label']] = budget
            rows.append(row)
            if row.get('status') != 'ok':
                continue
            if test_set is None:
                saved = load_saved(row['work_dir'])
                test_set = TestSet(saved['inputs'], saved['trues'])
            else:
                saved = load_saved(row['work_dir'], ('trues', 'preds'))
                check_same_sequences(saved, test_set, row['label'])
            predictions[row['label']] = saved['preds'][:shown_samples(options)]
    if test_set is None:
        raise ValueError(f'None of {paths} has a tested method row to merge.')
    if options.references:
        rows += references
        predictions.update(reference_predictions(test_set.inputs, test_set.trues.shape[1]))
    first = metas[0][1]
    meta = dict(first, budget='per row (Epochs, Train seq/epoch and Steps columns)', cfg_options={}, overrides={},
                merged_from=[path for path, _ in metas],
                notes=list(options.notes) + [f'Merged runs -- {_run_summary(path, meta)}' for path, meta in metas]
                + [note for _, meta in metas for note in meta.get('notes', [])])
    files = write_tables(rows, meta, out_dir)
    files.update(draw_pictures(test_set, predictions, out_dir, options))
    log.info('Merged leaderboard written to %s', files['md'])
    return {'rows': rows, 'meta': meta, 'files': files}
