"""Figures in the style of the study: input sequence, true frame, predicted frame and their difference.

For each task one good and one poor example are shown, taken at low / high quantiles of the per-sequence MSE
(not the extremes, which are rarely typical of either).
"""
from __future__ import annotations

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from openstl_hrvq.files import save_figure  # noqa: E402
from openstl_hrvq.interpolation.evaluation import RowOutputs, per_sequence_mse  # noqa: E402
from openstl_hrvq.interpolation.protocol import TASKS  # noqa: E402

QUANTILES = (0.1, 0.9)


def pick_examples(outputs: RowOutputs, quantiles: tuple[float, float] = QUANTILES) -> list[dict]:
    """A good and a poor example per task: dicts with ``task`` (index), ``sequence``, ``label`` and ``mse``."""
    mse = per_sequence_mse(outputs)
    examples = []
    for task_index, task in enumerate(TASKS):
        order = np.argsort(mse[:, task_index], kind='stable')
        for label, quantile in zip(('good', 'poor'), quantiles):
            sequence = int(order[round(quantile * (len(order) - 1))])
            examples.append({'task': task_index, 'sequence': sequence, 'label': label,
                             'mse': float(mse[sequence, task_index])})
    return examples


def _image(ax, frame: np.ndarray, title: str, **style):
    shown = ax.imshow(frame, interpolation='nearest', **style)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def example_figure(outputs: RowOutputs, title: str, path: str, quantiles: tuple[float, float] = QUANTILES) -> str:
    """Draw the good / poor examples of both tasks of one protocol row and save them as a PNG.

    One line per example: the four input frames in the order the model reads them, the true frame, the
    predicted frame (clipped to [0, 1]) and prediction minus truth on a diverging scale.
    """
    examples = pick_examples(outputs, quantiles)
    num_inputs = outputs.inputs.shape[2]
    fig, axes = plt.subplots(len(examples), num_inputs + 3, layout='constrained',
                             figsize=(1.25 * (num_inputs + 3) + 1.2, 1.4 * len(examples) + 0.4))
    gray = dict(cmap='gray', vmin=0.0, vmax=1.0)
    for line, example in zip(axes, examples):
        task, sequence = TASKS[example['task']], example['sequence']
        inputs = outputs.inputs[sequence, example['task'], :, 0]
        true = outputs.trues[sequence, example['task'], 0]
        pred = np.clip(outputs.preds[sequence, example['task'], 0], 0.0, 1.0)
        for ax, frame, number in zip(line, inputs, task.input_frames):
            _image(ax, frame, f'input f{number}', **gray)
        _image(line[num_inputs], true, f'true f{task.target_frame}', **gray)
        _image(line[num_inputs + 1], pred, f'predicted f{task.target_frame}', **gray)
        diff = _image(line[num_inputs + 2], pred - true, 'pred - true', cmap='RdBu_r', vmin=-1.0, vmax=1.0)
        line[0].set_ylabel(f'{task.name}\n{example["label"]} (#{sequence})\nMSE {example["mse"]:.1f}', fontsize=8)
    fig.colorbar(diff, ax=axes[:, -1].tolist(), shrink=0.6)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path
