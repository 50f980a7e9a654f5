"""The paper's analyses of a trained S-HR-VQVAE checkpoint, and its tables built from configs and leaderboards.

    python tools/analyze.py all --work_dir work_dirs/leaderboard_mmnist/shvqvae \\
        --leaderboard work_dirs/leaderboard_mmnist/leaderboard.json --out work_dirs/analysis_mmnist
    python tools/analyze.py layers --ckpt path/to/best.ckpt      # per-layer maps (paper Fig. 4/5)
    python tools/analyze.py usage --work_dir ...                 # codebook usage per layer and subtree
    python tools/analyze.py robustness --work_dir ...            # blur / fragment blur / noise (Fig. 6)
    python tools/analyze.py compression --configs configs/mmnist/shvqvae*.py   # compression ratio (Table 1)
    python tools/analyze.py sweep --leaderboard a/leaderboard.json b/leaderboard.json   # Table 3

Each analysis writes <name>.md and <name>.json (and figures) under --out (default <work_dir>/analysis).
"""
from __future__ import annotations

import argparse
import csv
import glob
import logging
import os
import os.path as osp

import numpy as np
import torch

from openstl_hrvq.analysis import (codebook_usage, compression_table, encode_frames, evaluate_robustness,
                                   layer_contributions, layer_errors, layer_reconstructions, load_trained_model,
                                   sweep_rows, test_sequences)
from openstl_hrvq.analysis.codebook import usage_markdown
from openstl_hrvq.analysis.compression import compression_markdown
from openstl_hrvq.analysis.robustness import examples_figure, robustness_figure, robustness_markdown
from openstl_hrvq.analysis.sweep import sweep_markdown
from openstl_hrvq.analysis.layers import layer_figure
from openstl_hrvq.api.experiment import torch_device
from openstl_hrvq.benchmark.table import read_rows
from openstl_hrvq.files import atomic_write, save_json, save_text
from openstl_hrvq.visualization import save_image

log = logging.getLogger('analyze')

MODEL_ANALYSES = ('layers', 'usage', 'robustness')
DEFAULT_CONFIG_PATTERNS = ('configs/*/shvqvae*.py',)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def write_report(out: str, name: str, title: str, markdown: str, data) -> None:
    save_text(osp.join(out, f'{name}.md'), f'# {title}\n\n{markdown}\n')
    save_json(osp.join(out, f'{name}.json'), data, default=_json_default)
    log.info('%s:\n%s', title, markdown)


def frames_of(inputs: np.ndarray, trues: np.ndarray) -> np.ndarray:
    """All frames of the sequences, ``(N * (T_in + S), C, H, W)``."""
    return np.concatenate([inputs, trues], axis=1).reshape(-1, *inputs.shape[2:])


def run_layers(trained, inputs: np.ndarray, trues: np.ndarray, args) -> str:
    vqvae = trained.model.vqvae
    frames = frames_of(inputs, trues)
    recon = torch.cat([layer_reconstructions(vqvae, torch.as_tensor(frames[start:start + 64], device=args.device)).cpu()
                       for start in range(0, len(frames), 64)]).numpy()
    errors = layer_errors(frames, recon)
    shown = inputs[:args.num_frames, -1]     # the last input frame of the first sequences
    shown_recon = layer_reconstructions(vqvae, torch.as_tensor(shown, device=args.device))
    contributions = layer_contributions(vqvae, shown_recon).cpu().numpy()
    figure = save_image(layer_figure(shown, shown_recon.cpu().numpy(), contributions), osp.join(args.out, 'layers.png'))
    lines = ['| Layers used | MSE ↓ | SSIM ↑ | PSNR ↑ |', '|---:|---:|---:|---:|']
    lines += [f"| 1-{row['layers']} | {row['mse']:.2f} | {row['ssim']:.4f} | {row['psnr']:.2f} |" for row in errors]
    lines.append(f'\nReconstruction of {len(frames)} test frames from the first i layers (MSE per frame, summed '
                 f'over pixels). Figure: {osp.basename(figure)}.')
    write_report(args.out, 'layers', 'Reconstruction from the first layers (paper Fig. 4/5)', '\n'.join(lines),
                 {'checkpoint': trained.checkpoint, 'frames': len(frames), 'rows': errors, 'figure': figure})
    return 'layers'


def run_usage(trained, inputs: np.ndarray, trues: np.ndarray, args) -> str:
    indices = encode_frames(trained.model.vqvae, frames_of(inputs, trues), device=args.device)
    usage = codebook_usage(indices, trained.model.vqvae.codebook_size)
    with atomic_write(osp.join(args.out, 'subtrees.csv'), 'w') as handle:
        fields = [key for key in usage['subtrees'][0] if key != 'counts'] + ['counts']
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in usage['subtrees']:
            writer.writerow({**row, 'counts': ' '.join(map(str, row['counts']))})
    write_report(args.out, 'usage', 'Codebook usage', usage_markdown(usage),
                 {'checkpoint': trained.checkpoint, **usage})
    return 'usage'


def run_robustness(trained, inputs: np.ndarray, trues: np.ndarray, args) -> str:
    result = evaluate_robustness(trained.model, inputs, trues, predict_sequences=args.predict_sequences,
                                 batch_size=args.batch_size, seed=args.seed, device=args.device)
    curves = robustness_figure(result['rows'], osp.join(args.out, 'robustness.png'))
    examples = save_image(examples_figure(result['examples']), osp.join(args.out, 'robustness_examples.png'))
    rows = result['rows']
    note = (f"\n\nReconstruction: HR-VQVAE on the corrupted input frames of {rows[0]['recon_sequences']} test "
            f"sequences, against the clean frames. Prediction: the model fed corrupted inputs, first "
            f"{rows[0]['pred_sequences']} sequences, against the true future. MSE per frame (summed over pixels). "
            f"Figures: {osp.basename(curves)}, {osp.basename(examples)}.")
    write_report(args.out, 'robustness', 'Robustness to corrupted inputs (paper Fig. 6)',
                 robustness_markdown(rows) + note, {'checkpoint': trained.checkpoint, 'rows': rows})
    return 'robustness'


def run_compression(args) -> str:
    files = args.configs or sorted(path for pattern in DEFAULT_CONFIG_PATTERNS for path in glob.glob(pattern))
    if not files:
        raise FileNotFoundError('No S-HR-VQVAE configs found: pass config files, e.g. configs/mmnist/shvqvae.py.')
    rows = compression_table(files)
    write_report(args.out, 'compression', 'Compression ratio of each configuration (paper Table 1)',
                 compression_markdown(rows), rows)
    return 'compression'


def run_sweep(args) -> str:
    if not args.leaderboard:
        raise ValueError('The sweep is built from leaderboard results: pass --leaderboard <leaderboard.json> ...')
    rows, budgets = [], []
    for path in args.leaderboard:
        leaderboard_rows, meta = read_rows(path)
        rows += sweep_rows(leaderboard_rows)
        budgets.append(f"{meta['budget']} ({osp.dirname(path) or '.'})")
    write_report(args.out, 'sweep', 'Configuration sweep (paper Table 3)',
                 sweep_markdown(rows, '; '.join(budgets)), rows)
    return 'sweep'


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('analysis', choices=MODEL_ANALYSES + ('compression', 'sweep', 'all'))
    parser.add_argument('--configs', nargs='*', default=[],
                        help='config files for "compression" (default: configs/*/shvqvae*.py)')
    parser.add_argument('--work_dir', help='experiment folder of the trained model (checkpoints/best.ckpt)')
    parser.add_argument('--ckpt', help='checkpoint file (instead of --work_dir)')
    parser.add_argument('--leaderboard', nargs='*', default=[], help='leaderboard.json files for "sweep"')
    parser.add_argument('--out', help='output folder (default: <work_dir>/analysis, else work_dirs/analysis)')
    parser.add_argument('--num_sequences', type=int, default=64, help='test sequences analysed')
    parser.add_argument('--num_frames', type=int, default=6, help='frames shown in the per-layer figure')
    parser.add_argument('--predict_sequences', type=int, default=16,
                        help='sequences predicted per robustness condition (prediction is slow on a CPU)')
    parser.add_argument('--batch_size', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='auto', help="'auto' (CUDA when present), 'cpu' or 'cuda'")
    return parser


def main(argv=None) -> list[str]:
    args = create_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
    args.device = torch_device(args.device)
    args.out = args.out or (osp.join(args.work_dir, 'analysis') if args.work_dir else osp.join('work_dirs', 'analysis'))
    os.makedirs(args.out, exist_ok=True)
    wanted = MODEL_ANALYSES + ('compression', 'sweep') if args.analysis == 'all' else (args.analysis,)
    done = []
    if any(name in MODEL_ANALYSES for name in wanted):
        trained = load_trained_model(args.work_dir, args.ckpt, args.device)
        inputs, trues = test_sequences(trained, args.num_sequences)     # read once, shared by the analyses
        runners = {'layers': run_layers, 'usage': run_usage, 'robustness': run_robustness}
        with torch.no_grad():
            done += [runners[name](trained, inputs, trues, args) for name in wanted if name in MODEL_ANALYSES]
    if 'compression' in wanted:
        done.append(run_compression(args))
    if 'sweep' in wanted and (args.leaderboard or args.analysis == 'sweep'):
        done.append(run_sweep(args))
    return done


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise SystemExit(f'{type(error).__name__}: {error}') from None
