"""Seconds per training step and per prediction of S-HR-VQVAE (default Moving-MNIST config).

Measures, at batch 16 (10 -> 10 frames of 64x64 by default):

* ``vq step``: HR-VQVAE forward + backward + Adam step on all 20 frames of every sequence (stage 1);
* ``prior step``: ``prior.loss`` on the 20-frame token sequence + backward + Adam step (stage 2),
  teacher-forced in each decoding order;
* ``predict parallel`` / ``predict raster``: the full ``SHRVQVAE_Model`` forward under ``torch.no_grad``.

Every measurement is a median over ``--repeats`` runs after ``--warmup`` runs, of wall-clock and of
process CPU seconds. Frames are uniform noise:
the cost of these networks does not depend on the pixel values. The machine's load average is logged
before and after, because on a shared CPU other processes change the numbers.

Usage::

    python tools/benchmark_speed.py                 # default Moving-MNIST config, batch 16
    python tools/benchmark_speed.py --set vq_hidden=32 --set prior_hidden=48 --threads 2
"""
from __future__ import annotations

import argparse
import ast
import logging
import os
import statistics
import time
from typing import Callable

import torch

from openstl_hrvq.method_registry import constructor_keys
from openstl_hrvq.model_info import count_parameters
from openstl_hrvq.models import SHRVQVAE_Model

logger = logging.getLogger('benchmark_speed')

MMNIST_CONFIG = dict(in_shape=(10, 1, 64, 64), pre_seq_length=10, aft_seq_length=10)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per measurement (median reported)')
    parser.add_argument('--raster-repeats', type=int, default=3, help='timed runs of raster prediction')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs before each measurement')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--skip-raster', action='store_true', help='do not time raster prediction')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a SHRVQVAE_Model config key (Python literal), e.g. vq_hidden=32')
    return parser.parse_args(argv)


def build_config(overrides: list[str]) -> dict:
    config = dict(MMNIST_CONFIG)
    for item in overrides:
        key, sep, value = item.partition('=')
        if not sep or key not in constructor_keys(SHRVQVAE_Model):
            raise ValueError(f'--set expects KEY=VALUE with KEY one of {sorted(constructor_keys(SHRVQVAE_Model))}, '
                             f'got {item!r}.')
        try:
            config[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            config[key] = value
    return config


def median_seconds(run: Callable[[], object], repeats: int, warmup: int,
                   device: torch.device) -> tuple[float, float]:
    """Median wall-clock and process-CPU seconds of ``run()`` over ``repeats`` calls after ``warmup``.

    CPU time is the contention-robust figure on a shared machine: with one thread it is what the
    wall clock would read on an idle core.
    """
    def timed() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return time.perf_counter() - wall, time.process_time() - cpu

    for _ in range(warmup):
        timed()
    walls, cpus = zip(*(timed() for _ in range(repeats)))
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None) -> dict:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = build_config(args.set)
    torch.manual_seed(0)
    model = SHRVQVAE_Model(**config).to(device)
    T_in, C, H, W = model.in_shape
    clip = torch.rand(args.batch_size, model.pre_seq_length + model.aft_seq_length, C, H, W, device=device)
    inputs = clip[:, :model.pre_seq_length].contiguous()

    logger.info('device %s, %d torch threads, load average before: %s', device, torch.get_num_threads(),
                ' '.join(f'{v:.2f}' for v in os.getloadavg()))
    logger.info('parameters: total %d (HR-VQVAE %d, ST-PixelCNN %d)', count_parameters(model),
                count_parameters(model.vqvae), count_parameters(model.prior))
    results = {}

    vq_optimizer = torch.optim.Adam(model.vqvae.parameters(), lr=3e-4)

    def vq_step():
        model.vqvae.train()
        loss = model.vqvae(clip).loss
        vq_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        vq_optimizer.step()

    results['vq step'] = median_seconds(vq_step, args.repeats, args.warmup, device)

    tokens = model.vqvae.encode(clip)
    model.eval()
    orders = ('parallel',) if args.skip_raster else ('parallel', 'raster')
    for order in orders:
        # The prior builds only the head of its decode order: one prior per order, on the same tokenizer.
        torch.manual_seed(0)
        ordered = SHRVQVAE_Model(**dict(config, decode_order=order)).to(device)
        ordered.vqvae = model.vqvae
        prior = ordered.prior
        prior_optimizer = torch.optim.Adam(prior.parameters(), lr=3e-4)

        def prior_step():
            prior.train()
            loss = prior.loss(tokens, ordered.pre_seq_length)
            prior_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            prior_optimizer.step()

        def prediction():
            with torch.no_grad():
                ordered(inputs)

        results[f'prior step ({order})'] = median_seconds(prior_step, args.repeats, args.warmup, device)
        prior.eval()
        repeats = args.repeats if order == 'parallel' else args.raster_repeats
        results[f'predict {order}'] = median_seconds(prediction, repeats, args.warmup, device)

    logger.info('batch %d, %d -> %d frames of %dx%d, median of %d runs (raster prediction: %d)',
                args.batch_size, model.pre_seq_length, model.aft_seq_length, H, W, args.repeats, args.raster_repeats)
    logger.info('  %-24s %10s %10s', 'measurement', 'wall s', 'CPU s')
    for name, (wall, cpu) in results.items():
        logger.info('  %-24s %10.3f %10.3f', name, wall, cpu)
    if 'predict raster' in results:
        logger.info('  %-24s %10.1f x', 'raster / parallel (wall)',
                    results['predict raster'][0] / results['predict parallel'][0])
    logger.info('load average after: %s', ' '.join(f'{v:.2f}' for v in os.getloadavg()))
    return results


if __name__ == '__main__':
    main()
