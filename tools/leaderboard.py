"""Train (or load) and test several methods on one dataset with one budget and seed; write a leaderboard.

    python tools/leaderboard.py -d mmnist --configs configs/mmnist/shvqvae.py configs/mmnist/shvqvae_joint.py \\
        --baselines simvp --epoch 4 --train_size 512 --test_size 256 --out work_dirs/leaderboard_mmnist
    python tools/leaderboard.py ... --load          # re-test the checkpoints of an earlier run
    python tools/leaderboard.py ...                 # again: reuses finished entries, continues interrupted ones
    python tools/leaderboard.py --merge a/leaderboard.json b/leaderboard.json --out merged   # one table, one grid
    python tools/leaderboard.py --preset quality --seed 1 --out work_dirs/quality_s1   # the quality benchmark

Writes <out>/leaderboard.{md,csv,json}, <out>/leaderboard_grid.png and <out>/animations/<row>.gif, and one
experiment folder per entry (<out>/<config name>/: checkpoints, logs, saved/*.npy).

An entry that fails becomes a row naming its error (exit status 1 after the table is written); SIGTERM and
SIGINT stop it with status 143 and 130, and the same command continues where it stopped.
"""
from __future__ import annotations

import argparse
import ast
import logging
import sys
import textwrap

from mmengine.config import DictAction

from openstl_hrvq.api.signals import exit_on_signals, exit_status
from openstl_hrvq.benchmark import (Budget, CostProtocol, LeaderboardOptions, build_entries, merge_leaderboards,
                                   run_leaderboard)
from openstl_hrvq.errors import UserError


#: Named argument sets; flags given beside ``--preset`` come after the preset's and override (or extend) them.
PRESETS = {
    # The quick config against OpenSTL's SimVPv2 (gSTA) at CPU widths (0.87 M parameters), same data, seed and
    # steps (7 epochs x 64 = 448), MSE and SSIM overall and per predicted frame; the config's mean of 8 with the
    # paper's argmax and the mean of 16 beside it (the same checkpoint, decoded three ways).
    'quality': ['-d', 'mmnist', '--configs', 'configs/mmnist/shvqvae_quick.py', '--baselines', 'simvp',
                '--override', 'SimVP_gSTA:hid_S=16', 'SimVP_gSTA:hid_T=64', 'SimVP_gSTA:N_T=4', 'SimVP_gSTA:lr=0.001',
                '--epoch', '7', '--train_size', '1024', '--test_size', '256', '--cfg-options', 'limit_val_batches=4',
                '--decodings', 'argmax', 'mean16', '--seed', '42', '--out', 'work_dirs/quality_mmnist'],
}

#: What each preset does, for ``--help``.
PRESET_DESCRIPTIONS = {
    'quality': "the quick config against OpenSTL's SimVPv2 (gSTA) at CPU widths, both 448 steps on the same "
               "embedded-digit data and seed, 256 test sequences; the S-HR-VQVAE checkpoint is also decoded with "
               "argmax and the mean of 16. Training takes about 6 min (S-HR-VQVAE) and 9 min (SimVPv2) on 2 idle CPU "
               "cores; SimVPv2's row needs OpenSTL.",
}


def presets_help() -> str:
    """The ``--help`` epilog: every preset, what it does and the flags it stands for."""
    lines = ['presets (--preset NAME; flags given beside it override or extend its own):']
    for name, flags in sorted(PRESETS.items()):
        lines += textwrap.wrap(f'{name}: {PRESET_DESCRIPTIONS[name]}', 78, initial_indent='  ',
                               subsequent_indent='    ')
        lines += textwrap.wrap(f'flags: {" ".join(flags)}', 78, initial_indent='    ', subsequent_indent='      ')
    return '\n'.join(lines)


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(items: list[str]) -> dict[str, dict]:
    """``['LABEL:key=value', ...]`` -> ``{label: {key: value}}``."""
    overrides: dict[str, dict] = {}
    for item in items:
        label, sep, assignment = item.partition(':')
        key, eq, value = assignment.partition('=')
        if not sep or not eq or not label or not key:
            raise ValueError(f'--override {item!r} is not LABEL:key=value, e.g. SimVP_gSTA:train_size=128.')
        overrides.setdefault(label, {})[key] = _value(value)
    return overrides


def parse_checkpoints(items: list[str]) -> dict[str, str]:
    """``['LABEL=PATH', ...]`` -> ``{label: path}``."""
    checkpoints = {}
    for item in items:
        label, eq, path = item.partition('=')
        if not eq or not label or not path:
            raise ValueError(f'--ckpt {item!r} is not LABEL=PATH, e.g. shvqvae=work_dirs/x/checkpoints/best.ckpt.')
        checkpoints[label] = path
    return checkpoints


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, epilog=presets_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=sorted(PRESETS),
                        help='a named set of the flags below (listed at the end of this help)')
    parser.add_argument('-d', '--dataname', default='mmnist', help='dataset of every entry (default: mmnist)')
    parser.add_argument('--configs', nargs='*', default=['configs/mmnist/shvqvae.py'],
                        help='config files, one row each (the plugin\'s or OpenSTL\'s)')
    parser.add_argument('--baselines', nargs='*', default=['simvp'],
                        help="OpenSTL baselines with OpenSTL's own config for the dataset (default: simvp = "
                             "SimVPv2/gSTA); skipped with a reason when OpenSTL is not importable")
    parser.add_argument('--epoch', type=int, help='training epochs of every entry (default: each config\'s)')
    parser.add_argument('--train_size', type=int, help='training sequences per epoch, every entry')
    parser.add_argument('--test_size', type=int, help='test sequences, every entry')
    parser.add_argument('--seed', type=int, default=42, help='seed of every entry (default: 42)')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    parser.add_argument('--data_root', default='./data', help="datasets in OpenSTL's layout (default: ./data)")
    parser.add_argument('--num_workers', type=int, help="dataloader workers (default: each config's)")
    parser.add_argument('--out', default=None, help='output folder (default: work_dirs/leaderboard_<dataname>)')
    parser.add_argument('--load', action='store_true', help='test existing checkpoints instead of training')
    again = parser.add_mutually_exclusive_group()
    again.add_argument('--resume', action='store_true',
                       help='the default: reuse the entries that finished with the same config, continue the '
                            'interrupted ones, train the missing ones')
    again.add_argument('--force', action='store_true',
                       help='retrain every entry from scratch (deletes their checkpoints under --out)')
    parser.add_argument('--merge', nargs='+', metavar='LEADERBOARD_JSON',
                        help='merge earlier runs on the same test sequences into one table and grid (no training)')
    parser.add_argument('--ckpt', nargs='*', default=[], metavar='LABEL=PATH', help='checkpoints for --load')
    parser.add_argument('--override', nargs='*', action='extend', default=[], metavar='LABEL:key=value',
                        help='budget or config override for one entry (stated in the table notes)')
    parser.add_argument('--cfg-options', '--cfg_options', nargs='+', action=DictAction, default={},
                        dest='cfg_options', help='key=value overrides for every entry')
    parser.add_argument('--decodings', nargs='*', default=[], metavar='DECODING',
                        help="also test every S-HR-VQVAE checkpoint with these decodings, a row each beside the "
                             "config's own: 'argmax' (paper), 'meanN' (mean of N rollouts sampled at T=1) or "
                             "'meanN-expected' (the same rollouts rendered from their expected codewords)")
    parser.add_argument('--no-references', action='store_true',
                        help='leave out the trivial references (copy-last-frame, mean-frame, all-black)')
    parser.add_argument('--throughput-batch', type=int, default=16, help='batch size of the throughput column')
    parser.add_argument('--throughput-repeats', type=int, default=5, help='timed batches of the throughput column')
    parser.add_argument('--grid-samples', type=int, nargs='+', default=[0, 1],
                        help='test sequences shown in leaderboard_grid.png (default: 0 1)')
    parser.add_argument('--animation-samples', type=int, default=4,
                        help='leading test sequences in each animation (default: 4)')
    parser.add_argument('--animation-format', choices=('gif', 'mp4'), default='gif',
                        help="animations as GIF, or MP4 (needs imageio's ffmpeg plugin)")
    parser.add_argument('--note', action='append', default=[], help='a line for the notes under the table')
    return parser


def main(argv=None) -> dict:
    parser = create_parser()
    args = parser.parse_args(argv)
    preset_overrides = {}
    if args.preset:
        given = list(sys.argv[1:] if argv is None else argv)
        preset_overrides = parse_overrides(parser.parse_args(PRESETS[args.preset]).override)
        args = parser.parse_args(PRESETS[args.preset] + given)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
    out = args.out or f'work_dirs/leaderboard_{args.dataname}'
    options = LeaderboardOptions(
        load=args.load, checkpoints=parse_checkpoints(args.ckpt),
        cfg_options=dict(args.cfg_options, **({'force': True} if args.force else {})),
        overrides=parse_overrides(args.override), references=not args.no_references,
        protocol=CostProtocol(args.throughput_batch, args.throughput_repeats), grid_samples=tuple(args.grid_samples),
        animation_samples=args.animation_samples, animation_format=args.animation_format, decodings=tuple(args.decodings),
        notes=tuple(args.note))
    if args.merge:
        result = merge_leaderboards(args.merge, out, options)
    else:
        entries = build_entries(args.configs, args.baselines, args.dataname)
        # A preset's overrides of an entry that the flags beside it left out (e.g. --baselines with none) go too.
        labels = {entry.label for entry in entries}
        for label in set(preset_overrides) - labels:
            options.overrides.pop(label, None)
        budget = Budget(dataname=args.dataname, epoch=args.epoch, train_size=args.train_size,
                        test_size=args.test_size, seed=args.seed, device=args.device, data_root=args.data_root,
                        num_workers=args.num_workers)
        result = run_leaderboard(entries, budget, out, options)
    with open(result['files']['md']) as handle:
        logging.getLogger('leaderboard').info('\n%s', handle.read())
    return result


def failed_entries(result: dict) -> list[str]:
    return [f"{row['label']} ({row['status']})" for row in result['rows'] if row.get('status', '').startswith('failed')]


def cli(argv=None) -> int:
    """:func:`main` for the command line: one line and a non-zero status for a failure (1: an entry failed, its
    row says why; 2: a mistake in the arguments or files; 143/130: SIGTERM/SIGINT)."""
    try:
        with exit_on_signals():
            result = main(argv)
    except (UserError, FileNotFoundError, ValueError, KeyError) as error:
        sys.stderr.write(f'error: {error}\n')
        return 2
    except BaseException as error:
        return exit_status(error, '; run the same command again to continue')
    failed = failed_entries(result)
    if failed:
        sys.stderr.write(f'error: {len(failed)} entr{"y" if len(failed) == 1 else "ies"} failed, see their rows in '
                         f"{result['files']['md']}: {'; '.join(failed)}\n")
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(cli())
