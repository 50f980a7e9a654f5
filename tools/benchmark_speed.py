"""Seconds per training step and sequences per second of prediction of S-HR-VQVAE, with SimVPv2 beside it.

Measures one config (default: the quick Moving-MNIST config) at batch 16, 10 -> 10 frames of 64x64:

* ``tokenizer step``: the HR-VQVAE stage's step as training runs it (``vq_frames`` random frames of each clip,
  all of them when unset): forward + backward + Adam;
* ``prior step``: the prior stage's step as training runs it: the frozen tokenizer encodes the 20-frame clips
  without autograd, then the prior's cross-entropy on the config's ``prior_loss_frames`` (self-resampled
  histories too when ``prior_resample_prob`` > 0) + backward + Adam;
* ``decoding <name>``: ``SHRVQVAE_Model.forward`` under ``torch.no_grad`` for each decoding of ``--decodings``
  (``argmax``, ``meanN``, ``meanN-expected``), as seconds per batch and sequences per second;
* ``SimVPv2 (gSTA) training step`` and ``prediction``: OpenSTL's SimVPv2 at the CPU widths of the quality
  benchmark (hid_S 16, hid_T 64, N_T 4; 0.87 M parameters) on the same batch (its step: MSE of the 10 predicted
  frames + backward + Adam, as OpenSTL trains it), when OpenSTL is importable (``--no-simvp`` skips it).

``--profile N`` then runs one prior step under ``torch.profiler`` and prints its N costliest operators, grouped by
operator and input shapes, so each row can be told apart by its tensor (for example the head's convolution over
``B x 19 x L`` maps): where a step's time goes on this machine.

``--fp16`` runs every measurement under the autocast that the runner's ``--fp16`` gives training and testing:
bfloat16 on a CPU, float16 on CUDA.

Every figure is the median over ``--repeats`` runs after ``--warmup`` runs, of wall-clock and of process CPU
seconds (with one thread, CPU seconds are what an idle core's wall clock would read, which holds up on a
shared machine). Frames are uniform noise and the weights untrained: the cost of these networks does not
depend on the values. The commit, thread count and load average are printed with the results.

Usage::

    python tools/benchmark_speed.py                              # the quick config, torch's default threads
    python tools/benchmark_speed.py --threads 1 --repeats 7
    python tools/benchmark_speed.py -c configs/mmnist/shvqvae.py --decodings argmax
    python tools/benchmark_speed.py --set decode_order=raster --decodings argmax
    python tools/benchmark_speed.py --threads 1 --fp16           # bfloat16 autocast on a CPU
    python tools/benchmark_speed.py --threads 1 --no-simvp --profile 15
"""
from __future__ import annotations

import argparse
import ast
import datetime
import logging
import os
import os.path as osp
import subprocess

import torch

from openstl_hrvq.api.config import load_config_file
from openstl_hrvq.benchmark.step_timing import (median_seconds, shrvqvae_model, shrvqvae_training_steps,
                                                simvp_model, simvp_steps)
from openstl_hrvq.model_info import count_parameters
from openstl_hrvq.models.shrvqvae_model import decoding_keys

logger = logging.getLogger('benchmark_speed')

REPOSITORY = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMNIST_SHAPE = dict(in_shape=(10, 1, 64, 64), pre_seq_length=10, aft_seq_length=10)
#: OpenSTL's SimVPv2 (gSTA) Moving-MNIST config at the quality benchmark's CPU widths.
SIMVP_CPU = dict(model_type='gSTA', hid_S=16, hid_T=64, N_S=4, N_T=4, spatio_kernel_enc=3, spatio_kernel_dec=3)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-c', '--config', default=osp.join(REPOSITORY, 'configs', 'mmnist', 'shvqvae_quick.py'),
                        help='S-HR-VQVAE config file (default: the quick Moving-MNIST config)')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per measurement (median reported)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs before each measurement')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--decodings', nargs='+', default=['argmax', 'mean8'], metavar='NAME',
                        help="decodings to time: 'argmax', 'meanN', 'meanN-expected' (default: argmax mean8)")
    parser.add_argument('--no-simvp', action='store_true', help="do not time OpenSTL's SimVPv2 for reference")
    parser.add_argument('--fp16', action='store_true',
                        help="mixed precision as the runner's --fp16: bfloat16 on a CPU, float16 on CUDA")
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help="also profile one prior step and print its N costliest operators by input shapes")
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key (Python literal), e.g. prior_hidden=48')
    return parser.parse_args(argv)


def build_config(path: str, overrides: list[str]) -> dict:
    """The config file's keys on top of the Moving-MNIST shapes, then the ``--set`` overrides."""
    config = dict(MMNIST_SHAPE, **load_config_file(path))
    for item in overrides:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'--set expects KEY=VALUE, got {item!r}.')
        try:
            config[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            config[key] = value
    return config


def commit() -> str:
    """The checkout's short commit, with ``+changes`` when its tracked files differ from it."""
    def git(*args) -> str:
        return subprocess.run(['git', '-C', REPOSITORY, *args], capture_output=True, text=True).stdout.strip()
    head = git('rev-parse', '--short', 'HEAD') or 'unknown'
    return head + ('+changes' if git('status', '--porcelain', '--untracked-files=no') else '')


def main(argv=None) -> dict:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = build_config(args.config, args.set)
    torch.manual_seed(0)
    model = shrvqvae_model(config, device)
    _, C, H, W = model.in_shape
    clip = torch.rand(args.batch_size, model.pre_seq_length + model.aft_seq_length, C, H, W, device=device)
    inputs = clip[:, :model.pre_seq_length].contiguous()

    logger.info('%s, commit %s, %s, device %s, %d torch threads, %s, load average before: %s',
                osp.relpath(args.config), commit(), datetime.date.today().isoformat(), device,
                torch.get_num_threads(), 'mixed precision (--fp16)' if args.fp16 else 'float32',
                ' '.join(f'{v:.2f}' for v in os.getloadavg()))
    logger.info('parameters: total %d (HR-VQVAE %d, ST-PixelCNN %d); batch %d, %d -> %d frames of %dx%d, '
                'median of %d runs', count_parameters(model), count_parameters(model.vqvae),
                count_parameters(model.prior), args.batch_size, model.pre_seq_length, model.aft_seq_length, H, W,
                args.repeats)
    results, per_second = {}, {}
    steps = shrvqvae_training_steps(model, config, clip)
    for name, step in steps.items():
        results[name] = median_seconds(step, args.repeats, args.warmup, device, args.fp16)

    model.eval()
    for name in args.decodings:
        model.set_decoding(**decoding_keys(name))

        def prediction():
            with torch.no_grad():
                model(inputs)

        label = f'decoding {name}'
        results[label] = median_seconds(prediction, args.repeats, args.warmup, device, args.fp16)
        per_second[label] = args.batch_size / results[label][0], args.batch_size / results[label][1]

    simvp = None if args.no_simvp else simvp_model(dict(SIMVP_CPU, in_shape=model.in_shape), device)
    if simvp is not None:
        targets = clip[:, model.pre_seq_length:].contiguous()
        for name, step in simvp_steps(simvp.eval(), inputs, targets).items():
            results[f'SimVPv2 (gSTA) {name}'] = median_seconds(step, args.repeats, args.warmup, device, args.fp16)
        label = 'SimVPv2 (gSTA) prediction'
        per_second[label] = args.batch_size / results[label][0], args.batch_size / results[label][1]

    logger.info('  %-28s %9s %9s %12s %12s', 'measurement', 'wall s', 'CPU s', 'seq/s (wall)', 'seq/CPU-s')
    for name, (wall, cpu) in results.items():
        rates = per_second.get(name)
        logger.info('  %-28s %9.3f %9.3f %12s %12s', name, wall, cpu, f'{rates[0]:.1f}' if rates else '',
                    f'{rates[1]:.1f}' if rates else '')
    logger.info('load average after: %s', ' '.join(f'{v:.2f}' for v in os.getloadavg()))
    if args.profile > 0:
        logger.info('one prior step, its %d costliest operators by self time:\n%s', args.profile,
                    profile_table(steps['prior step'], args.profile, device, args.fp16))
    return results


def profile_table(run, rows: int, device: torch.device, fp16: bool = False) -> str:
    """torch.profiler's table of one call of ``run()`` (after the timed runs have warmed it up): the ``rows``
    operators with the most self time, grouped by operator and input shapes."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities, record_shapes=True) as profiler:
        median_seconds(run, repeats=1, warmup=0, device=device, fp16=fp16)
    sort_by = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    return profiler.key_averages(group_by_input_shape=True).table(sort_by=sort_by, row_limit=rows,
                                                                  max_name_column_width=32,
                                                                  max_shapes_column_width=72)


if __name__ == '__main__':
    main()
