#!/usr/bin/env python
"""Write datasets in OpenSTL's on-disk layout, so OpenSTL and openstl_hrvq train on the same files.

Subcommands:
  embed-digits   convert OpenCV's digits.png sheet into the package data openstl_hrvq ships
  mmnist         data_root/moving_mnist/{train-images-idx3-ubyte.gz, mnist_test_seq.npy}
  mfmnist        data_root/moving_fmnist/{train-images-idx3-ubyte.gz, fmnist_test_seq.npy}

Run ``python tools/prepare_data.py <subcommand> --help`` for the options of each.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import numpy as np

logger = logging.getLogger('prepare_data')

DIGITS_SHEET_SHA256 = '60c917758ef97cc090f35cd8e293e4de691ef942847da0ff80dedab33d57c662'
SHEET_CELL = 20
SHEET_COLUMNS = 100
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
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, digits=digits, labels=labels, source_sha256=np.array(digest))
    logger.info('wrote %d digits (%d classes) to %s (%d bytes)',
                len(digits), len(np.unique(labels)), output, output.stat().st_size)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)

    embed = sub.add_parser('embed-digits', help="convert OpenCV's digits.png into the package data")
    embed.add_argument('--sheet', type=Path, default=Path('../shared/data/digits.png'),
                       help="OpenCV's samples/data/digits.png (Debian opencv-doc: examples/data/digits.png)")
    embed.add_argument('--output', type=Path,
                       default=Path(__file__).resolve().parents[1] / 'openstl_hrvq/datasets/data/mnist_digits.npz')
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = build_parser().parse_args(argv)
    if args.command == 'embed-digits':
        embed_digits(args.sheet, args.output)


if __name__ == '__main__':
    sys.exit(main())
