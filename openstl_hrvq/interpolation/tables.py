"""The study's tables: one per training set, rows = protocol rows, columns N, MSE, MAE, SSIM per method.

``results`` everywhere is ``{train_set: {method_label: {row: scores}}}`` with ``scores`` as returned by
:func:`openstl_hrvq.interpolation.evaluation.score_outputs`.
"""
from __future__ import annotations

import csv
import os
import os.path as osp

from openstl_hrvq.files import atomic_write, save_json, save_text
from openstl_hrvq.interpolation.evaluation import FRAME_GROUPS, METRICS
from openstl_hrvq.interpolation.protocol import ROWS

COLUMN_NAMES = {'mse': 'MSE', 'mae': 'MAE', 'ssim': 'SSIM'}
DECIMALS = {'mse': 2, 'mae': 2, 'ssim': 4}
GROUP_TITLES = {'frames 4+16': 'frames 4 and 16 together', 'frame 4': 'frame 4 (interpolation)',
                'frame 16': 'frame 16 (extrapolation)'}


def table_rows(by_method: dict[str, dict[str, dict]], group: str = 'frames 4+16') -> list[dict]:
    """One dict per protocol row, in the study's order: ``row``, ``N``, then ``(method, metric)`` values."""
    rows = []
    for row in ROWS:
        present = {method: scores[row] for method, scores in by_method.items() if row in scores}
        if not present:
            continue
        line = {'row': row, 'N': next(iter(present.values()))['N']}
        for method, scores in present.items():
            line.update({(method, name): scores[group][name] for name in METRICS})
        rows.append(line)
    return rows


def to_markdown(rows: list[dict], methods: list[str]) -> str:
    """A markdown table; with several methods each metric column is headed ``MSE (method)``."""
    single = len(methods) == 1
    header = ['test set', 'N'] + [COLUMN_NAMES[name] if single else f'{COLUMN_NAMES[name]} ({method})'
                                  for method in methods for name in METRICS]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
    for line in rows:
        cells = [line['row'], str(line['N'])]
        cells += [f'{line[(method, name)]:.{DECIMALS[name]}f}' if (method, name) in line else '-'
                  for method in methods for name in METRICS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def results_markdown(results: dict, note: str = '') -> str:
    """The whole report: per training set, the frames-together table, then frame 4 and frame 16 alone."""
    parts = ['# Transformed-digit interpolation / extrapolation benchmark', '']
    if note:
        parts += [note, '']
    for train_set, by_method in results.items():
        methods = list(by_method)
        for group in FRAME_GROUPS:
            parts += [f'## Trained on {train_set}: {GROUP_TITLES[group]}', '',
                      to_markdown(table_rows(by_method, group), methods), '']
    return '\n'.join(parts)


def write_tables(results: dict, out_dir: str, note: str = '') -> dict[str, str]:
    """Write ``tables.md``, ``tables.csv`` (one line per train set, method, row, frame group) and ``results.json``.

    Returns:
        format -> path.
    """
    paths = {'md': osp.join(out_dir, 'tables.md'), 'csv': osp.join(out_dir, 'tables.csv'),
             'json': osp.join(out_dir, 'results.json')}
    save_text(paths['md'], results_markdown(results, note))
    with atomic_write(paths['csv'], 'w') as handle:
        writer = csv.writer(handle)
        writer.writerow(['train_set', 'method', 'row', 'frames', 'N', *METRICS])
        for train_set, by_method in results.items():
            for method, scores in by_method.items():
                for row, row_scores in scores.items():
                    for group in FRAME_GROUPS:
                        writer.writerow([train_set, method, row, group, row_scores['N'],
                                         *(row_scores[group][name] for name in METRICS)])
    save_json(paths['json'], results)
    return paths
