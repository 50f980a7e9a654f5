"""The trivial predictions every video predictor must beat; they need no training and no parameters.

One set, scored beside every test (the runner's log) and every leaderboard (rows of their own):

* ``copy-last-frame``: every future frame is the last input frame (right for a static scene);
* ``mean-frame``: every future frame is the per-pixel mean of the input frames of the same sequence (the best
  constant guess under MSE when the future looks like the past on average: a blur of the trajectory);
* ``all-black``: every future frame is zeros (what a predictor that draws nothing scores; on sparse frames
  such as Moving MNIST's it is a strong MSE reference).
"""
from __future__ import annotations

import numpy as np


def copy_last_frame(inputs: np.ndarray, num_future: int) -> np.ndarray:
    """``(N, T_in, C, H, W)`` -> ``(N, num_future, C, H, W)``: the last input frame, repeated."""
    return np.repeat(inputs[:, -1:], num_future, axis=1)


def mean_frame(inputs: np.ndarray, num_future: int) -> np.ndarray:
    """``(N, T_in, C, H, W)`` -> ``(N, num_future, C, H, W)``: the mean input frame, repeated."""
    return np.repeat(inputs.mean(axis=1, keepdims=True, dtype=np.float64).astype(inputs.dtype), num_future, axis=1)


def all_black(inputs: np.ndarray, num_future: int) -> np.ndarray:
    """``(N, T_in, C, H, W)`` -> ``(N, num_future, C, H, W)`` of zeros."""
    return np.zeros((inputs.shape[0], num_future, *inputs.shape[2:]), dtype=inputs.dtype)


#: Name -> (prediction, what it predicts in words), in the order tables and logs list them.
REFERENCES = {
    'copy-last-frame': (copy_last_frame, 'the last input frame repeated'),
    'mean-frame': (mean_frame, 'the mean input frame repeated'),
    'all-black': (all_black, 'zeros'),
}
REFERENCE_NAMES = tuple(REFERENCES)


def reference_predictions(inputs: np.ndarray, num_future: int) -> dict[str, np.ndarray]:
    """Name -> ``(N, num_future, C, H, W)`` prediction of each reference, in :data:`REFERENCE_NAMES` order.

    Args:
        inputs: ``(N, T_in, C, H, W)`` input frames.
        num_future: frames to predict, S.
    """
    return {name: predict(inputs, num_future) for name, (predict, _) in REFERENCES.items()}


def reference_notes() -> str:
    """One line that says what each reference predicts (under a table of their scores)."""
    return '; '.join(f'{name}: {words}' for name, (_, words) in REFERENCES.items()) + '.'
