"""The study's evaluation protocol: which frames go in, which frame is scored, how the inputs are corrupted.

Interpolation recovers frame 4 by predicting *backwards* from frames 8, 7, 6, 5; extrapolation recovers frame 16
from frames 12-15. Only the first predicted frame is scored. Test variants corrupt the inputs only: ``noise``
(additive Gaussian), ``miss`` (one input frame blanked), ``aug`` (both); the corruption of sequence ``i`` is
seeded by (split, task, variant, ``i``), so every method sees the very same corrupted inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from openstl_hrvq.datasets import transformed_digits as tdigits


@dataclass(frozen=True)
class Task:
    """A task of the protocol: the 1-based frames fed to the model, in order, and the frame it must produce."""

    name: str
    input_frames: tuple[int, ...]
    target_frame: int


TASKS = (
    Task('interpolation', (8, 7, 6, 5), tdigits.INTERP_FRAME),
    Task('extrapolation', (12, 13, 14, 15), tdigits.EXTRAP_FRAME),
)
#: variant -> (additive noise, one input frame missing)
VARIANTS = {'clean': (False, False), 'noise': (True, False), 'miss': (False, True), 'aug': (True, True)}
#: test set name in the tables -> split it is drawn from
TEST_SETS = {'n6': 'n6-test', 'n3': 'n3-test'}


def row_name(test_set: str, variant: str) -> str:
    """The study's row label: ``n6``, ``n6-noise``, ..., ``n3-aug``."""
    return test_set if variant == 'clean' else f'{test_set}-{variant}'


ROWS = tuple(row_name(test_set, variant) for test_set in TEST_SETS for variant in VARIANTS)


def parse_row(row: str) -> tuple[str, str]:
    """``'n3-miss'`` -> ``('n3', 'miss')``; ``'n6'`` -> ``('n6', 'clean')``."""
    test_set, _, variant = row.partition('-')
    variant = variant or 'clean'
    if test_set not in TEST_SETS or variant not in VARIANTS:
        raise ValueError(f'Unknown protocol row {row!r}: choose one of {ROWS}.')
    return test_set, variant


def task_inputs(sequences: np.ndarray, task: Task, variant: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The model inputs and the scored frame of ``task`` for every sequence, with ``variant`` applied.

    Args:
        sequences: uint8 ``(N, 16, H, W)`` complete sequences of ``split``.

    Returns:
        inputs float32 ``(N, 4, 1, H, W)`` in the order of ``task.input_frames``; target float32 ``(N, 1, 1, H, W)``.
    """
    noise, miss = VARIANTS[variant]
    frames = torch.from_numpy(sequences.astype(np.float32) / 255.0).unsqueeze(2)
    inputs = frames[:, [frame - 1 for frame in task.input_frames]]
    target = frames[:, task.target_frame - 1:task.target_frame]
    if noise or miss:
        keys = (tdigits.SEED, tdigits.SPLITS[split].code, TASKS.index(task), list(VARIANTS).index(variant))
        corrupted = []
        for index, clip in enumerate(inputs):
            generator = tdigits.seeded_generator(*keys, index)
            missing = int(torch.randint(len(task.input_frames), (1,), generator=generator)) if miss else -1
            corrupted.append(tdigits.corrupt_inputs(clip, noise, missing, generator))
        inputs = torch.stack(corrupted)
    return inputs, target
