"""Moving MNIST (``mmnist``) and Moving Fashion-MNIST (``mfmnist``) with OpenSTL's layout and protocol.

Training sequences are generated on the fly (10,000 per epoch, two digits, 64x64, step 0.1);
the test set is fixed. The validation set is a fixed stream generated from the training digits
(:data:`VAL_STREAM`, never a training or test stream); ``val_from='test'`` validates on the test set, as
OpenSTL does. Digit sources, tried in this order when ``source='auto'``:

- ``files``: ``data_root/moving_mnist/{train-images-idx3-ubyte.gz, mnist_test_seq.npy}``
  (``moving_fmnist/…fmnist_test_seq.npy`` for mfmnist) -- the published benchmark.
- ``embedded`` (mmnist only): the 5,000 real MNIST digits inside the package, 4,000 for training and
  a generated test set of 1,000 sequences drawn from the other 1,000.
- ``debian`` (mfmnist only): Fashion-MNIST from Debian's ``dataset-fashion-mnist``; training from its
  60,000 training images, a generated test set of 10,000 sequences from its 10,000 test images.

Generated test sets use :data:`TEST_SET_SEED`; ``tools/prepare_data.py`` writes the very same
sequences to disk so OpenSTL can be scored on them too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from openstl_hrvq.errors import ConfigError, DataFileError, MissingFileError

from .digit_files import GET_DATA_HINT, load_test_sequences, read_idx_images
from .embedded_digits import embedded_digit_split, load_embedded_digits
from .loaders import VAL_SPLIT_SEED, EpochStreamSampler, build_loaders, check_val_from, default_val_size
from .moving_digits import DIGIT_SIZE, FixedMovingDigits, GeneratedMovingDigits

logger = logging.getLogger(__name__)

TRAIN_SEQUENCES_PER_EPOCH = 10_000
TEST_SET_SEED = 2015  # fixed for good: every generated test set (and prepare_data's files) derives from it
TEST_SET_FRAMES = 20
#: The validation stream: a tuple seed, so no int training seed gives its sequences (see moving_digits).
VAL_STREAM = (VAL_SPLIT_SEED, 0)
EMBEDDED_TEST_SEQUENCES = 1_000
GENERATED_TEST_SEQUENCES = 10_000
DEBIAN_FASHION_MNIST = Path('/usr/share/datasets/fashion-mnist')
TRAIN_IMAGES_FILE = 'train-images-idx3-ubyte.gz'
TEST_IMAGES_FILE = 't10k-images-idx3-ubyte.gz'
LAYOUT = {'mnist': ('moving_mnist', 'mnist_test_seq.npy'), 'fmnist': ('moving_fmnist', 'fmnist_test_seq.npy')}
FALLBACK = {'mnist': 'embedded', 'fmnist': 'debian'}


@dataclass
class DigitSource:
    """Where a moving-digit benchmark's digits come from.

    ``test_sequences`` (uint8 ``(frames, N, H, W)``) is set for a fixed test file; otherwise the test
    set is generated from ``test_digits`` (uint8 ``(M, 28, 28)``) with :data:`TEST_SET_SEED`.
    ``train_file`` is the idx file ``train_digits`` were read from, if any.
    """

    name: str
    description: str
    train_digits: np.ndarray
    test_sequences: np.ndarray | None = None
    test_digits: np.ndarray | None = None
    num_generated_test: int = 0
    train_file: Path | None = None


def _check_digits(digits: np.ndarray, path: Path, hint: str = GET_DATA_HINT) -> np.ndarray:
    if digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or len(digits) == 0:
        raise DataFileError(f'{path} holds images of shape {digits.shape}; expected (N, 28, 28); {hint}.')
    return digits


def rebuild_hint(data_root: str | Path, data_name: str) -> str:
    """How to rebuild the files of ``data_name`` under ``data_root``, for the errors that name one of them."""
    command = {'mnist': 'mmnist', 'fmnist': 'mfmnist'}[data_name]
    return (f'rebuild them with `python tools/prepare_data.py {command} --data-root {data_root} --force` '
            f'(the published files: docs/benchmarks.md, section "Data")')


def files_source(data_root: str | Path, data_name: str, num_frames: int, image_size: int) -> DigitSource:
    """OpenSTL's files under ``data_root`` (the published benchmark), checked: a missing, truncated, corrupt or
    wrong-shape/dtype file is one error that names it and how to rebuild it."""
    folder, test_file = LAYOUT[data_name]
    train_path = Path(data_root) / folder / TRAIN_IMAGES_FILE
    test_path = Path(data_root) / folder / test_file
    hint = rebuild_hint(data_root, data_name)
    train_digits = _check_digits(read_idx_images(train_path, hint), train_path, hint)
    return DigitSource('files', f'{train_path} + {test_path}', train_digits,
                       test_sequences=load_test_sequences(test_path, num_frames, image_size, hint))


def embedded_source() -> DigitSource:
    """The package's 5,000 MNIST digits split 4,000 / 1,000 (test digits never used for training)."""
    images, _ = load_embedded_digits()
    train_idx, test_idx = embedded_digit_split()
    return DigitSource('embedded', 'the 5,000 embedded OpenCV MNIST digits (4,000 train / 1,000 test digits)',
                       images[train_idx], test_digits=images[test_idx], num_generated_test=EMBEDDED_TEST_SEQUENCES)


def idx_folder_source(folder: str | Path = DEBIAN_FASHION_MNIST, name: str = 'debian') -> DigitSource:
    """A folder with (Fashion-)MNIST's ``train-`` and ``t10k-images-idx3-ubyte.gz`` (Debian's by default).

    Training uses the training images; the generated test set (10,000 sequences) the test images.
    """
    root = Path(folder)
    train_path, test_path = root / TRAIN_IMAGES_FILE, root / TEST_IMAGES_FILE
    for path in (train_path, test_path):
        if not path.is_file():
            raise MissingFileError(f'Missing {path}; for Fashion-MNIST run `apt-get install dataset-fashion-mnist` '
                                   f'(files in {DEBIAN_FASHION_MNIST}); {GET_DATA_HINT}.')
    return DigitSource(name, f'the idx images in {root}', _check_digits(read_idx_images(train_path), train_path),
                       test_digits=_check_digits(read_idx_images(test_path), test_path),
                       num_generated_test=GENERATED_TEST_SEQUENCES, train_file=train_path)


def resolve_source(data_root: str | Path, data_name: str = 'mnist', source: str = 'auto', num_frames: int = 20,
                   image_size: int = 64, fashion_root: str | Path = DEBIAN_FASHION_MNIST) -> DigitSource:
    """Pick the digit source (see the module docstring) and log which one in one line.

    Raises:
        FileNotFoundError / ValueError: one sentence naming the expected files and how to get them.
    """
    if data_name not in LAYOUT:
        raise ConfigError(f'Unknown moving-digit data_name {data_name!r}; choose from {sorted(LAYOUT)}.')
    folder, test_file = LAYOUT[data_name]
    expected = [Path(data_root) / folder / TRAIN_IMAGES_FILE, Path(data_root) / folder / test_file]
    if source == 'auto':
        source = 'files' if any(path.exists() for path in expected) else FALLBACK[data_name]
        if source == 'debian' and not (Path(fashion_root) / TRAIN_IMAGES_FILE).is_file():
            raise MissingFileError(
                f'No Moving Fashion-MNIST data: expected {expected[0]} and {expected[1]}, or Fashion-MNIST at '
                f'{fashion_root} (`apt-get install dataset-fashion-mnist`); {GET_DATA_HINT}.')
    builders = {'files': lambda: files_source(data_root, data_name, num_frames, image_size),
                'embedded': embedded_source, 'debian': lambda: idx_folder_source(fashion_root)}
    if source not in builders or (source != 'files' and source != FALLBACK[data_name]):
        raise ConfigError(f'source={source!r} is not available for {data_name}; use auto, files or '
                          f'{FALLBACK[data_name]}.')
    chosen = builders[source]()
    if chosen.name == 'files':
        logger.info('%s: using the published benchmark files %s', data_name, chosen.description)
    else:
        logger.warning('%s: %s not found, using %s with %d generated test sequences -- NOT the published '
                       'benchmark (tools/prepare_data.py writes these files).', data_name,
                       ' and '.join(map(str, expected)), chosen.description, chosen.num_generated_test)
    return chosen


def load_data(batch_size: int, val_batch_size: int, data_root: str | Path, num_workers: int = 0,
              data_name: str = 'mnist', pre_seq_length: int = 10, aft_seq_length: int = 10,
              in_shape=(10, 1, 64, 64), distributed: bool = False, use_augment: bool = False,
              use_prefetcher: bool = False, drop_last: bool = False, train_size: int | None = None,
              test_size: int | None = None, source: str = 'auto', seed: int | None = None,
              fashion_root: str | Path = DEBIAN_FASHION_MNIST, val_from: str = 'train', val_size: int | None = None):
    """``(train, val, test)`` loaders of ``(inputs (B, pre, 1, H, W), targets (B, aft, 1, H, W))`` in [0, 1].

    Args:
        data_name: ``'mnist'`` or ``'fmnist'``.
        train_size: training sequences per epoch (None: OpenSTL's 10,000).
        test_size: cap on test sequences (None: all).
        source: ``'auto'``, ``'files'``, ``'embedded'`` (mnist) or ``'debian'`` (fmnist).
        seed: seed of the training stream (None: ``torch.initial_seed()``, so ``torch.manual_seed`` fixes it).
        val_from: ``'train'``: validate on :data:`VAL_STREAM` sequences of the training digits; ``'test'``: on
            the test set (OpenSTL's arrangement).
        val_size: validation sequences (None: as many as the test set, at most 1,000).
        use_prefetcher: accepted for OpenSTL compatibility; batches are moved by the trainer.
    """
    check_val_from(val_from)
    num_frames = pre_seq_length + aft_seq_length
    image_size = in_shape[-1] if in_shape is not None else 64
    if image_size < DIGIT_SIZE:
        raise ConfigError(f'in_shape {tuple(in_shape)} gives {image_size}x{image_size} frames, smaller than the '
                          f'{DIGIT_SIZE}x{DIGIT_SIZE} digits that move in them: use frames of at least {DIGIT_SIZE} px '
                          f'(OpenSTL: 64).')
    chosen = resolve_source(data_root, data_name, source, num_frames, image_size, fashion_root)
    train_length = TRAIN_SEQUENCES_PER_EPOCH if train_size is None else train_size
    train_seed = torch.initial_seed() if seed is None else seed
    train_set = GeneratedMovingDigits(chosen.train_digits, train_length, train_seed, pre_seq_length, aft_seq_length,
                                      image_size, use_augment=use_augment, data_name=data_name)
    if chosen.test_sequences is not None:
        test_set = FixedMovingDigits(chosen.test_sequences, pre_seq_length, aft_seq_length, test_size, data_name)
    else:
        test_length = chosen.num_generated_test if test_size is None else min(test_size, chosen.num_generated_test)
        test_set = GeneratedMovingDigits(chosen.test_digits, test_length, TEST_SET_SEED, pre_seq_length,
                                         aft_seq_length, image_size, data_name=data_name)
    val_set = None
    if val_from == 'train':
        val_length = default_val_size(len(test_set)) if val_size is None else val_size
        val_set = GeneratedMovingDigits(chosen.train_digits, val_length, VAL_STREAM, pre_seq_length, aft_seq_length,
                                        image_size, data_name=data_name)
    return build_loaders(train_set, test_set, batch_size, val_batch_size, num_workers, distributed, drop_last,
                         train_sampler=EpochStreamSampler(train_set, train_length), val_set=val_set)
