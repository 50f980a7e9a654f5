"""Score predictions with the plugin's leaderboard-parity :func:`openstl_hrvq.metrics.metric`.

A trained method's row holds what its test (``LeaderboardTestMixin``, asked for :func:`leaderboard_metrics`)
computed with ``metric()`` on the arrays it saved to ``saved/*.npy``; the trivial references go through
:func:`score_predictions`. Either way the table holds exactly what ``metric()`` gives for those arrays.
"""
from __future__ import annotations

import math

import numpy as np

from openstl_hrvq.metrics import ALEXNET_WEIGHTS_FILE, find_alexnet_weights, metric

LEADERBOARD_METRICS = ('mse', 'mae', 'ssim', 'psnr', 'lpips')


def lpips_unavailable_reason() -> str | None:
    """Why LPIPS cannot be scored on this machine (one phrase), or None when it can."""
    try:
        import lpips  # noqa: F401  (needs torchvision)
    except ImportError as error:
        return f'the lpips package does not import ({error})'
    if find_alexnet_weights() is None:
        return (f"torchvision's ImageNet AlexNet weights ({ALEXNET_WEIGHTS_FILE}) are not on this machine "
                f'and are never downloaded')
    return None


def leaderboard_metrics(with_lpips: bool = True) -> list[str]:
    """The metric names a leaderboard scores (LPIPS left out when it cannot be computed)."""
    return [name for name in LEADERBOARD_METRICS if with_lpips or name != 'lpips']


def table_scores(results: dict) -> dict[str, float | None]:
    """``metric()`` results -> one value per :data:`LEADERBOARD_METRICS`, None for absent or NaN LPIPS."""
    scores = {name: results.get(name) for name in LEADERBOARD_METRICS}
    if scores['lpips'] is not None and math.isnan(scores['lpips']):
        scores['lpips'] = None
    return scores


#: The metrics a leaderboard also reports per predicted frame.
PER_FRAME_METRICS = ('mse', 'ssim')


def score_predictions(preds: np.ndarray, trues: np.ndarray, mean=None, std=None,
                      with_lpips: bool = True) -> tuple[dict[str, float | None], dict[str, list[float]]]:
    """Score ``preds`` against ``trues``, both ``(N, S, C, H, W)``.

    Returns:
        ``(scores, per_frame)``: MSE, MAE (per-frame sums), SSIM, PSNR and LPIPS (None when ``with_lpips`` is
        False or the network could not be loaded); and each of those per predicted frame, averaged over the
        N sequences (name -> S values).
    """
    results, _ = metric(preds, trues, mean, std, metrics=leaderboard_metrics(with_lpips), return_log=False,
                        per_frame=True)
    per_frame = {name: [float(value) for value in values.mean(axis=0)] for name, values in results.pop('per_frame').items()}
    return table_scores(results), per_frame
