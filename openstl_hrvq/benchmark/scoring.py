"""Score saved predictions with the plugin's leaderboard-parity :func:`openstl_hrvq.metrics.metric`.

Every row of a leaderboard (trained methods and trivial references) goes through :func:`score_predictions`,
so the table holds exactly what ``metric()`` gives for the arrays in ``saved/*.npy``.
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


def score_predictions(preds: np.ndarray, trues: np.ndarray, mean=None, std=None,
                      with_lpips: bool = True) -> dict[str, float | None]:
    """MSE, MAE (per-frame sums), SSIM, PSNR and LPIPS of ``preds`` against ``trues``, both ``(N, S, C, H, W)``.

    ``lpips`` is None when ``with_lpips`` is False or the network could not be loaded.
    """
    names = [name for name in LEADERBOARD_METRICS if with_lpips or name != 'lpips']
    results, _ = metric(preds, trues, mean, std, metrics=names, return_log=False)
    scores = {name: results.get(name) for name in LEADERBOARD_METRICS}
    if scores['lpips'] is not None and math.isnan(scores['lpips']):
        scores['lpips'] = None
    return scores
