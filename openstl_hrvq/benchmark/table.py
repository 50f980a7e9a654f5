"""The leaderboard's files: ``leaderboard.md`` (for people), ``leaderboard.csv`` and ``leaderboard.json`` (for tools).

A row is a flat dict with the keys of :data:`COLUMNS` (missing values are None) plus ``lpips_note``, the
reason LPIPS is missing. The Markdown table prints None as "n/a" and explains every "n/a" below the table.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import os.path as osp

from openstl_hrvq.files import save_json, save_text
from openstl_hrvq.references import reference_notes

#: (key, Markdown header, format) in table order; format None means "print as is".
COLUMNS = (
    ('method', 'Method', None),
    ('config', 'Config', None),
    ('decoding', 'Decoding', None),
    ('mse', 'MSE ↓', '{:.2f}'),
    ('mae', 'MAE ↓', '{:.2f}'),
    ('ssim', 'SSIM ↑', '{:.4f}'),
    ('psnr', 'PSNR ↑', '{:.2f}'),
    ('lpips', 'LPIPS ↓', '{:.4f}'),
    ('params', 'Params (M)', 'M'),
    ('flops', 'FLOPs/sample (G)', 'G'),
    ('throughput', 'Throughput (seq/s)', '{:.2f}'),
    ('train_time_s', 'Train time (s)', '{:.0f}'),
    ('epochs', 'Epochs', None),
    ('train_size', 'Train seq/epoch', None),
    ('train_steps', 'Steps', None),
    ('status', 'Status', None),
)
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)
EXTRA_KEYS = ('label', 'lpips_note', 'work_dir')
NOT_AVAILABLE = 'n/a'
#: Per-frame tables of ``leaderboard.md``: (metric, title, format); a row's ``per_frame`` holds its values.
PER_FRAME_TABLES = (('mse', 'MSE per predicted frame ↓', '{:.1f}'), ('ssim', 'SSIM per predicted frame ↑', '{:.3f}'))


def _format(value, fmt) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_AVAILABLE
    if fmt == 'M':
        return f'{value / 1e6:.3f}'
    if fmt == 'G':
        return f'{value / 1e9:.3f}'
    if fmt is None:
        return str(value)
    return fmt.format(value)


def markdown_table(rows: list[dict]) -> str:
    """The rows as a GitHub Markdown table (no notes)."""
    lines = ['| ' + ' | '.join(header for _, header, _ in COLUMNS) + ' |',
             '|' + '|'.join('---' if fmt is None else '---:' for _, _, fmt in COLUMNS) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(_format(row.get(key), fmt) for key, _, fmt in COLUMNS) + ' |')
    return '\n'.join(lines)


def per_frame_table(rows: list[dict], name: str, fmt: str) -> str | None:
    """The rows' ``per_frame[name]`` values as a Markdown table (one column per predicted frame), or None
    when no row has them."""
    shown = [row for row in rows if (row.get('per_frame') or {}).get(name)]
    if not shown:
        return None
    frames = max(len(row['per_frame'][name]) for row in shown)
    lines = ['| Method | Decoding | ' + ' | '.join(str(frame + 1) for frame in range(frames)) + ' |',
             '|---|---|' + '---:|' * frames]
    for row in shown:
        values = [_format(value, fmt) for value in row['per_frame'][name]]
        lines.append(f"| {row.get('label', row['method'])} | {row.get('decoding') or NOT_AVAILABLE} | "
                     + ' | '.join(values) + ' |')
    return '\n'.join(lines)


def markdown_report(rows: list[dict], meta: dict) -> str:
    """Title, budget line, table and notes: the content of ``leaderboard.md``."""
    notes = [f"- Dataset `{meta['dataname']}`, {meta['test_sequences']} test sequences "
             f"({meta['pre_seq_length']} -> {meta['aft_seq_length']} frames); budget: {meta['budget']}; "
             f"seed {meta['seed']}; device {meta['device']}.",
             '- MSE / MAE: per-frame sums over C x H x W, averaged over sequences and frames (OpenSTL); SSIM '
             '(data_range 2.0, as published) and PSNR on predictions clipped to [0, 1].',
             f"- FLOPs: fvcore, one sample of shape (1, {meta['pre_seq_length']}, C, H, W); throughput: "
             f"{meta['throughput_protocol']}. Train time: wall clock of training (validation included) on "
             f"this machine.",
             f'- {reference_notes()}']
    if meta.get('cfg_options'):
        notes.append('- Config overrides for every entry: '
                     + ', '.join(f'{key}={value}' for key, value in meta['cfg_options'].items()) + '.')
    lpips_notes = sorted({row['lpips_note'] for row in rows if row.get('lpips_note')})
    notes.extend(f'- LPIPS n/a: {note}.' for note in lpips_notes)
    for row in rows:
        if row.get('status', 'ok') != 'ok':
            notes.append(f"- {row['method']} ({row['config']}): {row['status'].rstrip('.')}.")
    for note in meta.get('notes', []):
        notes.append(f'- {note}')
    sections = [f"# Leaderboard: {meta['dataname']}", markdown_table(rows), '\n'.join(notes)]
    for name, title, fmt in PER_FRAME_TABLES:
        table = per_frame_table(rows, name, fmt)
        if table:
            sections += [f'## {title}', table]
    return '\n\n'.join(sections) + '\n'


def write_tables(rows: list[dict], meta: dict, out_dir: str) -> dict[str, str]:
    """Write ``leaderboard.{md,csv,json}`` under ``out_dir``; returns format -> path."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(out_dir, f'leaderboard.{ext}') for ext in ('md', 'csv', 'json')}
    save_text(paths['md'], markdown_report(rows, meta))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=COLUMN_KEYS + EXTRA_KEYS, extrasaction='ignore')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: '' if row.get(key) is None else row.get(key) for key in COLUMN_KEYS + EXTRA_KEYS})
    save_text(paths['csv'], table.getvalue())
    save_json(paths['json'], {'meta': meta, 'rows': rows})
    return paths


def read_rows(path: str) -> tuple[list[dict], dict]:
    """``(rows, meta)`` of a ``leaderboard.json``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'No leaderboard at {path}: run tools/leaderboard.py first, or pass the '
                                f'leaderboard.json it wrote.')
    with open(path) as handle:
        data = json.load(handle)
    return data['rows'], data['meta']
