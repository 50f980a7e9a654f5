"""Train S-HR-VQVAE and SimVPv2 for the same wall time on one device; record their steps per second and MSE.

A GPU job, by default the paper's config (``configs/mmnist/shvqvae.py``) against OpenSTL's own SimVPv2 (gSTA)
Moving-MNIST config (hid_S 64, hid_T 512, N_T 8), 150 s of training each, on embedded-digit Moving MNIST:

1. it times one training step of each on the device at the configs' batch size (S-HR-VQVAE: a tokenizer and a
   prior step, as ``tools/benchmark_speed.py`` does);
2. it sizes each run's epoch (``train_size``, the training sequences per epoch) so that ``--epochs`` epochs of
   steps fill ``--seconds``; S-HR-VQVAE's stage schedule is scaled to ``--epochs`` and each stage's epochs are
   costed at its own step;
3. it trains and tests both through the leaderboard (same data, seed, test sequences, trivial references);
4. it writes ``<out>/equal_time.{md,json}``: the planned and the measured training seconds (validation
   included), steps, steps per second, MSE, SSIM and the MSE of every predicted frame, beside the leaderboard's
   own files.

Steps take longer in training than alone (data loading, validation, logging), so the measured seconds exceed
the planned ones; both are reported. OpenSTL must be importable for SimVP.

Usage::

    python tools/equal_time.py                                  # 150 s of training each, on CUDA when present
    python tools/equal_time.py --seconds 60 --test_size 256 --out work_dirs/equal_time_short
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import sys

import torch

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api.experiment import torch_device
from openstl_hrvq.api.signals import exit_on_signals, exit_status
from openstl_hrvq.benchmark import Budget, CostProtocol, LeaderboardOptions, build_entries, run_leaderboard
from openstl_hrvq.benchmark.entries import Entry, openstl_root
from openstl_hrvq.benchmark.leaderboard import decoding_variant
from openstl_hrvq.benchmark.runner import entry_config
from openstl_hrvq.benchmark.step_timing import (median_seconds, shrvqvae_model, shrvqvae_training_steps,
                                                simvp_model, simvp_steps)
from openstl_hrvq.errors import ConfigError, UserError
from openstl_hrvq.files import save_json, save_text
from openstl_hrvq.methods.stage_schedule import StageSchedule

logger = logging.getLogger('equal_time')

REPOSITORY = osp.dirname(osp.dirname(osp.abspath(__file__)))
SIMVP_CONFIG = osp.join('configs', 'mmnist', 'simvp', 'SimVP_gSTA.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=osp.join(REPOSITORY, 'configs', 'mmnist', 'shvqvae.py'),
                        help="S-HR-VQVAE config (default: the paper's Moving-MNIST config)")
    parser.add_argument('--baseline', default=None,
                        help="SimVP config (default: OpenSTL's configs/mmnist/simvp/SimVP_gSTA.py)")
    parser.add_argument('--seconds', type=float, default=150.0, help='training seconds of each method')
    parser.add_argument('--epochs', type=int, default=8,
                        help="epochs of each run (S-HR-VQVAE's stages scaled to it; default 8: the paper's 1:3 "
                             "split gives 2 tokenizer + 6 prior epochs)")
    parser.add_argument('--test_size', type=int, default=1000, help='test sequences (default: 1000)')
    parser.add_argument('--val_batches', type=int, default=8, help='validation batches per epoch (default: 8)')
    parser.add_argument('--decodings', nargs='*', default=['mean8'],
                        help="S-HR-VQVAE decodings tested beside the config's own (default: mean8)")
    parser.add_argument('-d', '--dataname', default='mmnist')
    parser.add_argument('--data_root', default='./data')
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--device', default='auto', help="'auto' (CUDA when present), 'cuda' or 'cpu'")
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per measurement (median)')
    parser.add_argument('--out', default='work_dirs/equal_time_mmnist')
    return parser.parse_args(argv)


def step_seconds(entry: Entry, config: dict, device: torch.device, repeats: int) -> dict[str, float]:
    """Wall seconds of one training step on ``device`` at the config's batch size: ``{'tokenizer step': ...,
    'prior step': ...}`` for S-HR-VQVAE, ``{'training step': ...}`` for SimVP."""
    _, C, H, W = config['in_shape']
    total = config['pre_seq_length'] + config['aft_seq_length']
    torch.manual_seed(config['seed'])
    clip = torch.rand(config['batch_size'], total, C, H, W, device=device)
    if entry.method.lower() == 'shrvqvae':
        steps = shrvqvae_training_steps(shrvqvae_model(config, device), config, clip)
    else:
        inputs, targets = clip[:, :config['pre_seq_length']], clip[:, config['pre_seq_length']:]
        training = simvp_steps(simvp_model(config, device), inputs.contiguous(), targets.contiguous())['training step']
        steps = {'training step': training}
    return {name: median_seconds(step, repeats, 1, device)[0] for name, step in steps.items()}


def epoch_step_seconds(entry: Entry, config: dict, steps: dict[str, float], epochs: int) -> float:
    """Mean seconds of one step over the run's ``epochs`` epochs: S-HR-VQVAE's stages (scaled to ``epochs``) each
    at its own step; a joint-stage step is costed as a tokenizer plus a prior step."""
    if entry.method.lower() != 'shrvqvae':
        return steps['training step']
    lengths = StageSchedule.from_config(dict(config, epoch=epochs)).lengths
    per_stage = {'vq': steps['tokenizer step'], 'prior': steps['prior step'],
                 'joint': steps['tokenizer step'] + steps['prior step']}
    return sum(lengths[stage] * per_stage[stage] for stage in lengths) / epochs


def planned_train_size(seconds: float, epochs: int, step_s: float, batch_size: int) -> int:
    """Training sequences per epoch such that ``epochs`` epochs of ``step_s``-second steps fill ``seconds``
    (whole batches, at least one)."""
    steps_per_epoch = max(1, int(seconds / (epochs * step_s)))
    return steps_per_epoch * batch_size


def check_entries(entries: list[Entry]) -> None:
    """One line for what cannot run: a missing OpenSTL, or configs that are not S-HR-VQVAE then SimVP."""
    for entry in entries:
        if entry.skip_reason:
            raise UserError(f'{entry.label} cannot run here: {entry.skip_reason}.')
    methods = [entry.method.lower() for entry in entries]
    if methods != ['shrvqvae', 'simvp']:
        raise ConfigError(f'--config must be an S-HR-VQVAE config and --baseline a SimVP config; got the methods '
                          f'{[entry.method for entry in entries]}.')


def summary_rows(result: dict, plans: dict[str, dict], planned_label: dict[str, str]) -> list[dict]:
    """One row per tested decoding of a planned entry (``planned_label``: row label -> entry label): its plan
    beside the measured training and test numbers."""
    rows = []
    for row in result['rows']:
        entry = planned_label.get(row['label'])
        if entry is None or row.get('status') != 'ok':
            continue
        seconds, steps = row['train_time_s'], row['train_steps']
        rows.append(dict(method=row['method'], decoding=row['decoding'], planned_s=plans[entry]['planned_s'],
                         step_s=plans[entry]['step_s'], train_size=plans[entry]['train_size'], train_s=seconds,
                         steps=steps, steps_per_s=steps / seconds, mse=row['mse'], ssim=row['ssim'],
                         per_frame_mse=row['per_frame']['mse']))
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    """The summary table, then the MSE of every predicted frame, then how it was made."""
    frames = len(rows[0]['per_frame_mse']) if rows else 0
    lines = [f"# Equal wall time: {meta['seconds']:.0f} s of training each, {meta['device']}", '',
             '| method | decoding | step (s) | planned (s) | trained (s) | steps | steps/s | MSE | SSIM |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    lines += [f"| {row['method']} | {row['decoding']} | {row['step_s']:.4f} | {row['planned_s']:.0f} | "
              f"{row['train_s']:.0f} | {row['steps']} | {row['steps_per_s']:.2f} | {row['mse']:.2f} | "
              f"{row['ssim']:.4f} |" for row in rows]
    lines += ['', '| method | decoding | ' + ' | '.join(str(frame + 1) for frame in range(frames)) + ' |',
              '|---|---|' + '---:|' * frames]
    lines += [f"| {row['method']} | {row['decoding']} | " + ' | '.join(f'{mse:.1f}' for mse in row['per_frame_mse'])
              + ' |' for row in rows]
    lines += ['', f"- {meta['config']} against {meta['baseline']}: {meta['epochs']} epochs each, "
                  f"{meta['test_size']} test sequences, seed {meta['seed']}, dataset {meta['dataname']}.",
              '- step: one training step timed alone (S-HR-VQVAE: averaged over its stages); planned: steps x step; '
              'trained: the wall clock of training, validation included.',
              f"- The full table with the trivial references: {meta['leaderboard']}."]
    return '\n'.join(lines) + '\n'


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
    baseline = args.baseline
    if baseline is None:
        if not openstl_bridge.openstl_available():
            raise UserError('SimVPv2 needs OpenSTL: install it from its git repository (README, OpenSTL '
                            'integration), or name a SimVP config with --baseline.')
        baseline = osp.join(openstl_root(), SIMVP_CONFIG)
    entries = build_entries([args.config, baseline], [], args.dataname)
    check_entries(entries)
    budget = Budget(dataname=args.dataname, epoch=args.epochs, test_size=args.test_size, seed=args.seed,
                    device=args.device, data_root=args.data_root)
    device = torch.device(torch_device(args.device))
    plans, overrides = {}, {}
    for entry in entries:
        config = entry_config(entry, budget, args.out)
        steps = step_seconds(entry, config, device, args.repeats)
        step_s = epoch_step_seconds(entry, config, steps, args.epochs)
        train_size = planned_train_size(args.seconds, args.epochs, step_s, config['batch_size'])
        plans[entry.label] = dict(step_s=step_s, steps=steps, train_size=train_size,
                                  planned_s=args.epochs * train_size // config['batch_size'] * step_s)
        overrides[entry.label] = {'train_size': train_size}
        logger.info('%s: %s s per step on %s; %d epochs x %d sequences, planned %.0f s', entry.label,
                    ', '.join(f'{name} {value:.4f}' for name, value in steps.items()), device, args.epochs,
                    train_size, plans[entry.label]['planned_s'])
    options = LeaderboardOptions(cfg_options={'limit_val_batches': args.val_batches}, overrides=overrides,
                                 protocol=CostProtocol(), decodings=tuple(args.decodings),
                                 notes=(f'Equal wall time: {args.seconds:.0f} s of training each '
                                        f'(tools/equal_time.py).',))
    result = run_leaderboard(entries, budget, args.out, options)
    device_name = str(device) if device.type == 'cpu' else torch.cuda.get_device_name(device)
    meta = dict(seconds=args.seconds, device=device_name,
                config=osp.relpath(args.config), baseline=osp.relpath(baseline), epochs=args.epochs,
                test_size=args.test_size, seed=args.seed, dataname=args.dataname, leaderboard=result['files']['md'])
    # the rows of the extra decodings test their entry's checkpoint: they share its plan
    planned_label = {entry.label: entry.label for entry in entries}
    planned_label.update({decoding_variant(entry, spec).label: entry.label
                          for entry in entries for spec in args.decodings})
    rows = summary_rows(result, plans, planned_label)
    save_json(osp.join(args.out, 'equal_time.json'), dict(meta=meta, plans=plans, rows=rows))
    text = markdown(rows, meta)
    save_text(osp.join(args.out, 'equal_time.md'), text)
    logger.info('\n%s', text)
    return dict(meta=meta, plans=plans, rows=rows, leaderboard=result)


def cli(argv=None) -> int:
    """:func:`main` with one-line errors (status 2) and the runner's statuses for SIGTERM (143) and SIGINT (130)."""
    try:
        with exit_on_signals():
            main(argv)
    except (UserError, FileNotFoundError, ValueError) as error:
        sys.stderr.write(f'error: {error}\n')
        return 2
    except BaseException as error:
        return exit_status(error, '; run the same command again to continue')
    return 0


if __name__ == '__main__':
    sys.exit(cli())
