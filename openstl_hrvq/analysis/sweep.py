"""The configuration sweep (paper Table 3) from leaderboard results: depth (1 layer / 3 layers / deep)
and training (disjoint / joint) of S-HR-VQVAE side by side, with the code size of each configuration."""
from __future__ import annotations

import math

from openstl_hrvq.analysis.compression import compression_ratio
from openstl_hrvq.methods import SHRVQVAE_METHOD


def training_kind(model_config: dict) -> str:
    """'joint' when the schedule has a joint stage (paper eq. 9), else 'disjoint'."""
    return 'joint' if int(model_config.get('joint_epochs') or 0) > 0 else 'disjoint'


def sweep_rows(leaderboard_rows: list[dict]) -> list[dict]:
    """One row per S-HR-VQVAE entry that ran, ordered by depth then training."""
    rows = []
    for row in leaderboard_rows:
        model_config = row.get('model_config')
        if row.get('method') != SHRVQVAE_METHOD.display_name or row.get('status') != 'ok' or not model_config:
            continue
        code = compression_ratio(model_config)
        rows.append({'config': row['config'], 'layers': code['layers'], 'codebook_size': code['codebook_size'],
                     'codewords_per_layer': code['codewords_per_layer'], 'training': training_kind(model_config),
                     'decoding': row.get('decoding') or 'n/a', 'code_bits': code['code_bits'], 'ratio': code['ratio'],
                     **{key: row.get(key) for key in ('mse', 'mae', 'ssim', 'psnr', 'lpips', 'params',
                                                      'train_time_s', 'epochs', 'train_size')}})
    return sorted(rows, key=lambda r: (r['layers'], r['training'] != 'disjoint', r['config'], r['decoding']))


def _number(value, fmt: str) -> str:
    return 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def sweep_markdown(rows: list[dict], budget: str = '') -> str:
    lines = ['| Layers | M | Codewords per layer | Training | Decoding | Code bits | MSE ↓ | MAE ↓ | SSIM ↑ | PSNR ↑ | '
             'Params (M) | Config |', '|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|']
    for row in rows:
        params = row['params'] / 1e6 if row['params'] else None
        cells = [str(row['layers']), str(row['codebook_size']), ', '.join(map(str, row['codewords_per_layer'])),
                 row['training'], row['decoding'], f"{row['code_bits']:.0f}", _number(row['mse'], '{:.2f}'),
                 _number(row['mae'], '{:.2f}'), _number(row['ssim'], '{:.4f}'), _number(row['psnr'], '{:.2f}'),
                 _number(params, '{:.3f}'), row['config']]
        lines.append('| ' + ' | '.join(cells) + ' |')
    if budget:
        lines.append('')
        lines.append(f'Budget: {budget}.')
    return '\n'.join(lines)
