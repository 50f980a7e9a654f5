#!/usr/bin/env python
"""Time scoring a Moving MNIST-sized test set with openstl_hrvq.metrics.metric against the leaderboard's loop.

The leaderboard code (OpenSTL 1.0.0 ``openstl.core.metrics.metric``) scores SSIM, PSNR and LPIPS one
frame at a time. This tool times our vectorised ``metric`` on the whole set and that per-frame loop on a
subset (extrapolated linearly), checks that both agree on the subset, and compares both with the time
the model needs to predict the set.

Example: ``python tools/benchmark_metrics.py`` (10,000 sequences x 10 frames of 64x64, about 3.3 GB RAM).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from openstl_hrvq.metrics import SSIM_DATA_RANGE_PUBLISHED, find_alexnet_weights, load_lpips, metric  # noqa: E402

logger = logging.getLogger('benchmark_metrics')


def make_videos(sequences: int, frames: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth in [0, 1] and a noisy prediction that leaves [0, 1], float32 ``(N, T, 1, S, S)``."""
    rng = np.random.default_rng(seed)
    shape = (sequences, frames, 1, size, size)
    true = rng.random(shape, dtype=np.float32)
    pred = true + np.float32(0.1) * rng.standard_normal(shape, dtype=np.float32)
    return pred, true


def leaderboard_loop(pred: np.ndarray, true: np.ndarray, names: list[str]) -> dict[str, float]:
    """OpenSTL 1.0.0's procedure, frame by frame (with skimage's current channel_axis spelling)."""
    results = {}
    if 'mse' in names:
        results['mse'] = float(np.mean((pred - true) ** 2, axis=(0, 1)).sum())
    if 'mae' in names:
        results['mae'] = float(np.mean(np.abs(pred - true), axis=(0, 1)).sum())
    clipped = np.clip(pred, 0, 1)
    pairs = [(clipped[b, t], true[b, t]) for b in range(pred.shape[0]) for t in range(pred.shape[1])]
    if 'ssim' in names:
        results['ssim'] = float(np.mean([
            structural_similarity(p.swapaxes(0, 2), y.swapaxes(0, 2), channel_axis=-1,
                                  data_range=SSIM_DATA_RANGE_PUBLISHED) for p, y in pairs]))
    if 'psnr' in names:
        results['psnr'] = float(np.mean([-10 * np.log10(np.mean((p - y) ** 2)) for p, y in pairs]))
    if 'lpips' in names:
        import lpips

        network = load_lpips()
        with torch.no_grad():
            results['lpips'] = float(np.mean([
                network(lpips.im2tensor(p.transpose(1, 2, 0) * 255), lpips.im2tensor(y.transpose(1, 2, 0) * 255)).item()
                for p, y in pairs]))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sequences', type=int, default=10_000, help='test sequences (default: 10,000)')
    parser.add_argument('--frames', type=int, default=10, help='predicted frames per sequence (default: 10)')
    parser.add_argument('--size', type=int, default=64, help='frame height = width (default: 64)')
    parser.add_argument('--reference-sequences', type=int, default=100,
                        help='sequences scored with the per-frame loop, then extrapolated (default: 100)')
    parser.add_argument('--device', default='cpu', help='device for our metric (default: cpu)')
    parser.add_argument('--predict-seconds-per-16', type=float, default=0.75,
                        help="the model's prediction time for 16 sequences (default: 0.75 s)")
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')

    names = ['mse', 'mae', 'ssim', 'psnr'] + (['lpips'] if find_alexnet_weights() is not None else [])
    if 'lpips' not in names:
        logger.info('lpips skipped: AlexNet weights not found (see openstl_hrvq.metrics.find_alexnet_weights)')
    pred, true = make_videos(args.sequences, args.frames, args.size, args.seed)
    shape = f'{args.sequences} sequences x {args.frames} frames of {args.size}x{args.size}'

    pred_t, true_t = torch.from_numpy(pred).to(args.device), torch.from_numpy(true).to(args.device)
    ours, full = timed(lambda: metric(pred_t, true_t, metrics=names)[0], args.device)

    # Both methods again on the same subset, back to back, so that load from other processes hits
    # them alike; CPU seconds (all threads) are the load-independent measure.
    subset = min(args.reference_sequences, args.sequences)
    scale = args.sequences / subset
    reference, loop = timed(lambda: leaderboard_loop(pred[:subset], true[:subset], names), 'cpu')
    ours_subset, ours_small = timed(lambda: metric(pred[:subset], true[:subset], metrics=names)[0], 'cpu')
    gaps = {name: abs(ours_subset[name] - reference[name]) for name in names}

    predict_seconds = args.predict_seconds_per_16 * args.sequences / 16
    logger.info('scoring %s (%s); our metric on %s with %d torch threads', shape, ', '.join(names), args.device,
                torch.get_num_threads())
    logger.info('  %-44s %8s %10s', '', 'wall s', 'CPU s')
    logger.info('  %-44s %8.1f %10.1f', 'openstl_hrvq metric(), whole set', *full)
    logger.info('  %-44s %8.1f %10.1f', f'openstl_hrvq metric(), {subset} sequences x {scale:g}',
                ours_small[0] * scale, ours_small[1] * scale)
    logger.info('  %-44s %8.1f %10.1f', f'leaderboard per-frame loop, {subset} sequences x {scale:g}',
                loop[0] * scale, loop[1] * scale)
    logger.info('  %-44s %8.1f', f'model prediction ({args.predict_seconds_per_16:g} s per 16 sequences)',
                predict_seconds)
    logger.info('  speed-up on the subset: %.1fx wall, %.1fx CPU; whole-set scoring takes %.0f%% of prediction time',
                loop[0] / ours_small[0], loop[1] / ours_small[1], 100 * full[0] / predict_seconds)
    logger.info('  values: %s', ', '.join(f'{k}={v:.6g}' for k, v in ours.items()))
    logger.info('  largest gap to the loop on the subset: %s', ', '.join(f'{k}={v:.1e}' for k, v in gaps.items()))


def timed(run, device: str):
    """Run ``run()``; return its result and (wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return result, (time.perf_counter() - wall, time.process_time() - cpu)

if __name__ == '__main__':
    main()
