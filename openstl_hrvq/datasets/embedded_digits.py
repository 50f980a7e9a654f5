"""The 5,000 real MNIST digits shipped inside the package.

They come from OpenCV's ``samples/data/digits.png`` (Apache-2.0 / BSD-3-Clause): 500 digits per
class, size-normalised to 20x20 as MNIST does. ``tools/prepare_data.py embed-digits`` converts that
sheet once into ``data/mnist_digits.npz``; padding each digit by 4 pixels restores MNIST's own 28x28
framing, so code written for the MNIST idx files runs on them unchanged.

They are the default digit source when the MNIST files are absent. They are not the published
Moving MNIST benchmark.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

EMBEDDED_DIGITS_PATH = Path(__file__).resolve().parent / 'data' / 'mnist_digits.npz'
NUM_CLASSES = 10
DIGITS_PER_CLASS = 500
TRAIN_PER_CLASS = 400
MNIST_PAD = 4  # 20x20 digit + 4 px on every side = MNIST's 28x28 frame


@functools.lru_cache(maxsize=1)
def _load_npz() -> tuple[np.ndarray, np.ndarray]:
    if not EMBEDDED_DIGITS_PATH.is_file():
        raise FileNotFoundError(
            f'Embedded digits not found at {EMBEDDED_DIGITS_PATH}; reinstall openstl_hrvq or rebuild '
            'them with `python tools/prepare_data.py embed-digits`.')
    with np.load(EMBEDDED_DIGITS_PATH) as archive:
        digits, labels = archive['digits'], archive['labels']
    digits.setflags(write=False)
    labels.setflags(write=False)
    return digits, labels


def load_embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return the embedded digits in MNIST framing.

    Returns:
        images: uint8 ``(5000, 28, 28)``, white digit on black, sorted by class (500 per class).
        labels: int64 ``(5000,)`` class of each image, 0..9.
    """
    digits, labels = _load_npz()
    pad = ((0, 0), (MNIST_PAD, MNIST_PAD), (MNIST_PAD, MNIST_PAD))
    return np.pad(digits, pad), labels.astype(np.int64)


def embedded_digit_split() -> tuple[np.ndarray, np.ndarray]:
    """Split the embedded digits into disjoint train / test index sets.

    Per class the first 400 digits (in sheet order) are for training and the last 100 for testing,
    so no test digit is ever seen in training.

    Returns:
        train_idx: int64 ``(4000,)``; test_idx: int64 ``(1000,)``, both ascending.
    """
    _, labels = _load_npz()
    train, test = [], []
    for cls in range(NUM_CLASSES):
        members = np.flatnonzero(labels == cls)
        train.append(members[:TRAIN_PER_CLASS])
        test.append(members[TRAIN_PER_CLASS:])
    return np.concatenate(train).astype(np.int64), np.concatenate(test).astype(np.int64)
