"""Reading and writing the files of OpenSTL's Moving (Fashion-)MNIST layout.

- ``train-images-idx3-ubyte.gz``: LeCun's idx3 format (big-endian magic 2051, count, rows, cols, then
  uint8 pixels), gzip-compressed.
- ``{mnist,fmnist}_test_seq.npy``: the fixed test set, uint8 ``(frames, sequences, H, W)``.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from openstl_hrvq.errors import DataFileError, MissingFileError
from openstl_hrvq.files import atomic_write

IDX3_MAGIC = 2051
IDX3_HEADER_BYTES = 16
GET_DATA_HINT = 'see docs/benchmarks.md, section "Data", or run `python tools/prepare_data.py --help`'


def read_idx_images(path: str | Path, hint: str = GET_DATA_HINT) -> np.ndarray:
    """Read an idx3 image file (gzip-compressed if its name ends in .gz); errors name it and end with ``hint``.

    Returns:
        uint8 ``(N, rows, cols)``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f'Missing idx image file {path}; {hint}.')
    opener = gzip.open if path.suffix == '.gz' else open
    try:
        with opener(path, 'rb') as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataFileError(f'{path} is not a readable (gzip) idx3 file ({error}); {hint}.') from None
    if len(raw) < IDX3_HEADER_BYTES:
        raise DataFileError(f'{path} is too short to be an idx3 image file; {hint}.')
    magic, count, rows, cols = np.frombuffer(raw[:IDX3_HEADER_BYTES], dtype='>u4')
    if magic != IDX3_MAGIC or len(raw) != IDX3_HEADER_BYTES + int(count) * int(rows) * int(cols):
        raise DataFileError(f'{path} is not an idx3 image file (magic {magic}, {len(raw)} bytes for '
                            f'{count}x{rows}x{cols} images); {hint}.')
    return np.frombuffer(raw, dtype=np.uint8, offset=IDX3_HEADER_BYTES).reshape(int(count), int(rows), int(cols))


def write_idx_images(path: str | Path, images: np.ndarray) -> None:
    """Write uint8 ``(N, rows, cols)`` images as a gzip-compressed idx3 file."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 3:
        raise ValueError(f'idx3 images must be (N, rows, cols), got shape {images.shape}.')
    header = np.array([IDX3_MAGIC, *images.shape], dtype='>u4').tobytes()
    with atomic_write(str(path)) as handle, gzip.GzipFile(Path(path).name, 'wb', fileobj=handle) as compressed:
        compressed.write(header + images.tobytes())


def load_test_sequences(path: str | Path, num_frames: int, image_size: int, hint: str = GET_DATA_HINT) -> np.ndarray:
    """Memory-map a fixed test set and check it holds at least ``num_frames`` uint8 frames of the right size.

    uint8 is required, not just preferred: both loaders divide by 255, so a float file in [0, 1] would load as
    near-black frames. Errors name the file and end with ``hint``.

    Returns:
        uint8 ``(frames, sequences, H, W)`` (read-only memory map; ``frames >= num_frames``).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f'Missing fixed test set {path}; {hint}.')
    try:
        sequences = np.load(path, mmap_mode='r')
    except (ValueError, OSError, EOFError) as error:  # truncated (mmap longer than the file), pickled, not .npy
        raise DataFileError(f'{path} is not a complete .npy array ({error}); {hint}.') from None
    if (sequences.dtype != np.uint8 or sequences.ndim != 4 or sequences.shape[0] < num_frames
            or sequences.shape[1] == 0 or sequences.shape[2:] != (image_size, image_size)):
        raise DataFileError(f'{path} holds {sequences.dtype} {sequences.shape}; expected uint8 pixels 0-255 of shape '
                            f'(frames >= {num_frames}, sequences >= 1, {image_size}, {image_size}); {hint}.')
    return sequences
