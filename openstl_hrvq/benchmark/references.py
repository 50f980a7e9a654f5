"""Trivial predictions every video predictor must beat; they need no training and no parameters.

* ``copy-last-frame``: every future frame is the last input frame (right for a static scene);
* ``mean-frame``: every future frame is the per-pixel mean of the input frames of the same sequence
  (the best constant guess under MSE when the future looks like the past on average: a blur of the
  trajectory).
"""
from __future__ import annotations

import numpy as np

REFERENCE_NAMES = ('copy-last-frame', 'mean-frame')


def copy_last_frame(inputs: np.ndarray, num_future: int) -> np.ndarray:
    """``(N, T_in, C, H, W)`` -> ``(N, num_future, C, H, W)``: the last input frame, repeated."""
    return np.repeat(inputs[:, -1:], num_future, axis=1)


def mean_frame(inputs: np.ndarray, num_future: int) -> np.ndarray:
    """``(N, T_in, C, H, W)`` -> ``(N, num_future, C, H, W)``: the mean input frame, repeated."""
    return np.repeat(inputs.mean(axis=1, keepdims=True, dtype=np.float64).astype(inputs.dtype), num_future, axis=1)


def reference_predictions(inputs: np.ndarray, num_future: int) -> dict[str, np.ndarray]:
    """Name -> ``(N, num_future, C, H, W)`` prediction of each trivial reference, in :data:`REFERENCE_NAMES` order."""
    return {'copy-last-frame': copy_last_frame(inputs, num_future), 'mean-frame': mean_frame(inputs, num_future)}
