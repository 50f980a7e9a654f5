#!/usr/bin/env python
"""Write datasets in OpenSTL's on-disk layout, so OpenSTL and openstl_hrvq train on the same files.

Subcommands:
  mmnist         DATA_ROOT/moving_mnist/{train-images-idx3-ubyte.gz, mnist_test_seq.npy} from the embedded
                 digits (default; the same data as openstl_hrvq's fallback) or from MNIST idx files
  mfmnist        DATA_ROOT/moving_fmnist/{train-images-idx3-ubyte.gz, fmnist_test_seq.npy} from Fashion-MNIST
                 idx files (default: Debian's dataset-fashion-mnist; the same data as openstl_hrvq's fallback)
  embed-digits   convert OpenCV's digits.png sheet into the package data openstl_hrvq ships

Test sets are generated with openstl_hrvq's fixed test seed, so openstl_hrvq reading these files, OpenSTL
reading them, and openstl_hrvq's fallback without them all score the very same sequences. They are not
the published Moving MNIST / Moving FMNIST test files (download those with OpenSTL's
tools/prepare_data/download_mmnist.sh or download_mfmnist.sh where the network allows).

Run ``python tools/prepare_data.py <subcommand> --help`` for the options of each.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from openstl_hrvq.datasets.digit_files import read_idx_images, write_idx_images  # noqa: E402
from openstl_hrvq.datasets.moving_digits import generate_sequences  # noqa: E402
from openstl_hrvq.datasets.moving_mnist import (  # noqa: E402
    DEBIAN_FASHION_MNIST, LAYOUT, TEST_SET_FRAMES, TEST_SET_SEED, TRAIN_IMAGES_FILE, DigitSource, embedded_source,
    idx_folder_source)
from openstl_hrvq.errors import UserError  # noqa: E402
from openstl_hrvq.files import atomic_write, ensure_writable_folder, save_array  # noqa: E402

logger = logging.getLogger('prepare_data')

DIGITS_SHEET_SHA256 = '60c917758ef97cc090f35cd8e293e4de691ef942847da0ff80dedab33d57c662'
SHEET_CELL = 20
SHEET_ROWS_PER_CLASS = 5


def embed_digits(sheet: Path, output: Path) -> None:
    """Cut the 2000x1000 digits sheet into 5000 uint8 (20, 20) digits with their labels."""
    from PIL import Image

    raw = sheet.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DIGITS_SHEET_SHA256:
        raise ValueError(f'{sheet} has sha256 {digest}, expected {DIGITS_SHEET_SHA256} '
                         "(OpenCV's samples/data/digits.png).")
    with Image.open(sheet) as image:
        pixels = np.asarray(image.convert('L'), dtype=np.uint8)
    rows, cols = pixels.shape[0] // SHEET_CELL, pixels.shape[1] // SHEET_CELL
    digits = (pixels.reshape(rows, SHEET_CELL, cols, SHEET_CELL)
              .transpose(0, 2, 1, 3).reshape(rows * cols, SHEET_CELL, SHEET_CELL))
    labels = np.repeat(np.arange(rows) // SHEET_ROWS_PER_CLASS, cols).astype(np.uint8)
    with atomic_write(str(output)) as handle:
        np.savez_compressed(handle, digits=digits, labels=labels, source_sha256=np.array(digest))
    logger.info('wrote %d digits (%d classes) to %s (%d bytes)',
                len(digits), len(np.unique(labels)), output, output.stat().st_size)


def write_moving_digits(source: DigitSource, data_root: Path, data_name: str, num_test: int | None,
                        force: bool) -> None:
    """Write OpenSTL's training idx file and a generated fixed test set for ``source``."""
    folder, test_file = LAYOUT[data_name]
    train_path, test_path = data_root / folder / TRAIN_IMAGES_FILE, data_root / folder / test_file
    ensure_writable_folder(str(data_root / folder), '--data-root')
    complete = [str(path) for path in (train_path, test_path) if is_complete(path)]
    if len(complete) == 2 and not force:
        raise FileExistsError(f'{" and ".join(complete)} already exist; pass --force to overwrite them.')
    if complete and not force:
        logger.info('%s exists without its partner (an earlier run stopped half-way): writing both', complete[0])
    num_test = source.num_generated_test if num_test is None else num_test
    if source.train_file is not None:
        with atomic_write(str(train_path)) as handle, open(source.train_file, 'rb') as original:
            shutil.copyfileobj(original, handle)
    else:
        write_idx_images(train_path, source.train_digits)
    logger.info('wrote %d training images to %s', len(source.train_digits), train_path)
    sequences = generate_sequences(source.test_digits, TEST_SET_SEED, num_test, TEST_SET_FRAMES)
    save_array(str(test_path), sequences)
    logger.info('wrote %d test sequences %s from %s to %s', num_test, sequences.shape, source.description, test_path)


def is_complete(path: Path) -> bool:
    """Whether ``path`` is a whole file of its kind; an incomplete one (from a disk that filled up under an
    older, non-atomic writer) is overwritten without --force."""
    if not path.exists():
        return False
    try:
        if path.suffix == '.npy':
            np.load(path, mmap_mode='r')
        else:
            read_idx_images(path)
    except (UserError, ValueError, OSError, EOFError):
        logger.info('%s is incomplete or damaged: writing it again', path)
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)

    embed = sub.add_parser('embed-digits', help="convert OpenCV's digits.png into the package data")
    embed.add_argument('--sheet', type=Path, required=True,
                       help="OpenCV's samples/data/digits.png (Debian opencv-doc: examples/data/digits.png)")
    embed.add_argument('--output', type=Path,
                       default=Path(__file__).resolve().parents[1] / 'openstl_hrvq/datasets/data/mnist_digits.npz')

    mmnist = sub.add_parser('mmnist', help='write data_root/moving_mnist/ for mmnist')
    mmnist.add_argument('--data-root', type=Path, default=Path('data'), help='OpenSTL data root (default: data)')
    mmnist.add_argument('--mnist-dir', type=Path, default=None,
                        help='folder with MNIST train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz; '
                             'without it the embedded digits are used (4,000 train / 1,000 test digits)')
    mmnist.add_argument('--num-test', type=int, default=None,
                        help='test sequences (default: 1,000 embedded, 10,000 from idx files)')
    mmnist.add_argument('--force', action='store_true', help='overwrite existing files')

    mfmnist = sub.add_parser('mfmnist', help='write data_root/moving_fmnist/ for mfmnist')
    mfmnist.add_argument('--data-root', type=Path, default=Path('data'), help='OpenSTL data root (default: data)')
    mfmnist.add_argument('--fashion-dir', type=Path, default=DEBIAN_FASHION_MNIST,
                         help='folder with Fashion-MNIST train-/t10k-images-idx3-ubyte.gz '
                              '(default: Debian dataset-fashion-mnist)')
    mfmnist.add_argument('--num-test', type=int, default=None, help='test sequences (default: 10,000)')
    mfmnist.add_argument('--force', action='store_true', help='overwrite existing files')
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args)
    except (UserError, FileNotFoundError, FileExistsError, ValueError) as error:
        parser.exit(1, f'prepare_data: {error}\n')


def run(args: argparse.Namespace) -> None:
    if args.command == 'embed-digits':
        embed_digits(args.sheet, args.output)
    elif args.command == 'mmnist':
        source = embedded_source() if args.mnist_dir is None else idx_folder_source(args.mnist_dir, 'mnist')
        write_moving_digits(source, args.data_root, 'mnist', args.num_test, args.force)
    elif args.command == 'mfmnist':
        write_moving_digits(idx_folder_source(args.fashion_dir), args.data_root, 'fmnist', args.num_test, args.force)


if __name__ == '__main__':
    main()
