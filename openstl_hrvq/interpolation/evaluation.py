"""Run a trained video predictor through the protocol and score it with the suite's metrics.

Scores follow :func:`openstl_hrvq.metrics.metric` (per-frame sums over C x H x W for MSE / MAE, averaged over
frames; SSIM on clipped predictions), over the frames 4 and 16 of each sequence together and separately.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from openstl_hrvq.datasets import transformed_digits as tdigits
from openstl_hrvq.files import atomic_write
from openstl_hrvq.interpolation.protocol import ROWS, TASKS, TEST_SETS, parse_row, task_inputs
from openstl_hrvq.metrics import metric, per_frame_metrics

log = logging.getLogger(__name__)

METRICS = ('mse', 'mae', 'ssim')
#: table group -> slice of the task axis (interpolation = frame 4, extrapolation = frame 16)
FRAME_GROUPS = {'frames 4+16': slice(0, 2), 'frame 4': slice(0, 1), 'frame 16': slice(1, 2)}

Predictor = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class RowOutputs:
    """Inputs, true and predicted frames of one protocol row; axis 1 is the task (frame 4, frame 16).

    Shapes: ``inputs`` (N, 2, 4, 1, H, W), ``trues`` and ``preds`` (N, 2, 1, H, W), float32.
    """

    inputs: np.ndarray
    trues: np.ndarray
    preds: np.ndarray

    def save(self, path: str) -> None:
        """Write the arrays to ``path`` (an ``.npz``), atomically."""
        with atomic_write(path) as handle:
            np.savez_compressed(handle, inputs=self.inputs, trues=self.trues, preds=self.preds)

    @classmethod
    def load(cls, path: str) -> 'RowOutputs':
        with np.load(path) as archive:
            return cls(archive['inputs'], archive['trues'], archive['preds'])


def first_frame_predictor(method: torch.nn.Module, batch_size: int = 64) -> Predictor:
    """Wrap an OpenSTL-style method (``method(batch_x)`` -> ``(B, T_out, C, H, W)``) as the protocol's predictor.

    The predictor maps ``(N, 4, C, H, W)`` to the first predicted frame ``(N, 1, C, H, W)`` on the CPU, running
    the method in eval mode, without gradients, in batches on the method's own device.
    """
    def predict(inputs: torch.Tensor) -> torch.Tensor:
        device = next(method.parameters()).device
        was_training = method.training
        method.eval()
        try:
            with torch.no_grad():
                outputs = [method(batch.to(device))[:, :1].float().cpu() for batch in inputs.split(batch_size)]
        finally:
            method.train(was_training)
        return torch.cat(outputs)

    return predict


def copy_nearest_input(inputs: torch.Tensor) -> torch.Tensor:
    """The trivial reference: repeat the input frame next to the target (frame 5 for frame 4, 15 for 16).

    ``(N, 4, C, H, W)`` -> ``(N, 1, C, H, W)``. A method that does not beat it has not learnt the motion.
    """
    return inputs[:, -1:]


def row_inputs(row: str, eval_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and true frames of both tasks of protocol ``row`` on the first ``eval_size`` sequences of its split.

    Returns:
        inputs float32 ``(N, 2, 4, 1, H, W)`` and trues ``(N, 2, 1, H, W)``; axis 1 is (frame 4, frame 16).
    """
    test_set, variant = parse_row(row)
    split = TEST_SETS[test_set]
    sequences = tdigits.generate_split(split)[:eval_size]
    per_task = [task_inputs(sequences, task, variant, split) for task in TASKS]
    return torch.stack([x for x, _ in per_task], dim=1), torch.cat([y for _, y in per_task], dim=1)


def score_outputs(outputs: RowOutputs) -> dict:
    """``{'N': sequences, group: {'mse', 'mae', 'ssim'}}`` for each of :data:`FRAME_GROUPS`."""
    scores = {'N': int(len(outputs.preds))}
    for group, frames in FRAME_GROUPS.items():
        values, _ = metric(outputs.preds[:, frames], outputs.trues[:, frames], metrics=list(METRICS),
                           return_log=False)
        scores[group] = {name: float(values[name]) for name in METRICS}
    return scores


def per_sequence_mse(outputs: RowOutputs) -> np.ndarray:
    """MSE of every predicted frame: float64 ``(N, 2)`` (frame 4, frame 16), as :func:`metric` defines it."""
    return per_frame_metrics(outputs.preds, outputs.trues, metrics=['mse'])['mse']


def evaluate(predict: Predictor, rows: Iterable[str] = ROWS, eval_size: int | None = None,
             save_dir: str | None = None) -> tuple[dict, dict]:
    """Score ``predict`` on every protocol row.

    All rows go through ``predict`` as one batch of clips, so a slow model pays its per-call costs once.

    Args:
        predict: ``(N, 4, 1, 36, 36)`` -> ``(N, 1, 1, 36, 36)``, e.g. :func:`first_frame_predictor`.
        eval_size: cap on the sequences of each test split (None: 400 for n6, 100 for n3).
        save_dir: when given, each row's outputs go to ``<save_dir>/<row>.npz``.

    Returns:
        ``(scores, outputs)``: row -> :func:`score_outputs` dict, and row -> :class:`RowOutputs`.
    """
    prepared = {row: row_inputs(row, eval_size) for row in rows}
    clips = torch.cat([inputs.flatten(0, 1) for inputs, _ in prepared.values()])
    predictions = predict(clips).split([inputs.shape[0] * inputs.shape[1] for inputs, _ in prepared.values()])
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
    scores, outputs = {}, {}
    for (row, (inputs, trues)), preds in zip(prepared.items(), predictions):
        outputs[row] = RowOutputs(inputs.numpy(), trues.numpy(), preds.reshape(trues.shape).numpy())
        scores[row] = score_outputs(outputs[row])
        if save_dir:
            outputs[row].save(osp.join(save_dir, f'{row}.npz'))
        both = scores[row]['frames 4+16']
        log.info('%-9s N=%d  MSE %.3f  MAE %.3f  SSIM %.4f', row, scores[row]['N'], both['mse'], both['mae'],
                 both['ssim'])
    return scores, outputs
