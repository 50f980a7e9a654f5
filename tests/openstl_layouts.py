"""Small data files in OpenSTL's own layouts, as its loaders (``openstl/datasets/dataloader_*.py``) read them.

Each writer puts a handful of short, smoothly moving sequences under ``root`` and returns the ``in_shape`` it
wrote them at (small frames, so a test trains in seconds). The frames move predictably, so a model can beat
copying the last input frame on them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from openstl_hrvq.datasets.digit_files import write_idx_images


def drifting_blobs(num_frames: int, height: int, width: int, channels: int, rng: np.random.Generator,
                   speed: float = 1.0) -> np.ndarray:
    """Gaussian blobs drifting across a periodic canvas: float ``(num_frames, height, width, channels)`` in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.zeros((num_frames, height, width, channels))
    for channel in range(channels):
        for _ in range(2):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            vy, vx = rng.uniform(-speed, speed, 2)
            sigma = rng.uniform(2, 4)
            for t in range(num_frames):
                dy = (y - cy - vy * t + height / 2) % height - height / 2
                dx = (x - cx - vx * t + width / 2) % width - width / 2
                frames[t, ..., channel] += np.exp(-(dy ** 2 + dx ** 2) / (2 * sigma ** 2))
    return np.clip(frames, 0, 1)


def write_taxibj(root: Path, rng: np.random.Generator, train: int = 24, test: int = 6) -> list[int]:
    """``taxibj/dataset.npz``: ``X_/Y_train``, ``X_/Y_test`` float ``(N, 4, 2, 32, 32)`` in [-1, 1]."""
    arrays = {}
    for split, count in (('train', train), ('test', test)):
        clips = np.stack([drifting_blobs(8, 32, 32, 2, rng) for _ in range(count)]).transpose(0, 1, 4, 2, 3)
        clips = clips * 2 - 1
        arrays[f'X_{split}'], arrays[f'Y_{split}'] = clips[:, :4], clips[:, 4:]
    (root / 'taxibj').mkdir(parents=True)
    np.savez(root / 'taxibj' / 'dataset.npz', **arrays)
    return [4, 2, 32, 32]


def write_kitticaltech(root: Path, rng: np.random.Generator, height: int = 16, width: int = 20) -> list[int]:
    """``kitticaltech_npy/{train,test}_{data,idx}.npy``: frames float ``(N, H, W, 3)`` in [0, 1] (the loader does
    not resize them) and the first frame of every 11-frame window."""
    folder = root / 'kitticaltech_npy'
    folder.mkdir(parents=True)
    for split, videos in (('train', 4), ('test', 2)):
        frames = np.concatenate([drifting_blobs(22, height, width, 3, rng) for _ in range(videos)])
        starts = np.arange(0, len(frames) - 10, 11)
        np.save(folder / f'{split}_data.npy', frames.astype(np.float32))
        np.save(folder / f'{split}_idx.npy', starts)
    return [10, 3, height, width]


def write_human(root: Path, rng: np.random.Generator, size: int = 32) -> list[int]:
    """``human/{train,test}.txt`` lines ``<prefix>,<first frame>`` and ``human/<prefix><NNNNNN>.jpg`` frames; a
    clip reads 8 frames 5 apart."""
    folder = root / 'human'
    (folder / 'images').mkdir(parents=True)
    for split, videos in (('train', 4), ('test', 3)):
        lines = []
        for video in range(videos):
            prefix = f'images/S{video}_{split}.{video}_'
            frames = drifting_blobs(8, size, size, 3, rng)
            for t, frame in enumerate(frames):
                for repeat in range(5):   # the loader reads every 5th frame: fill the ones between too
                    number = 1 + 5 * t + repeat
                    Image.fromarray((frame * 255).astype(np.uint8)).save(folder / f'{prefix}{number:06d}.jpg')
            lines.append(f'{prefix},1\n')
        (folder / f'{split}.txt').write_text(''.join(lines))
    return [4, 3, size, size]


def write_weather_t2m(root: Path, rng: np.random.Generator, days: dict | None = None) -> list[int]:
    """``weather_5_625deg/2m_temperature/2m_temperature_<year>_5.625deg.nc``: hourly ``t2m`` in kelvin on the
    32 x 64 grid (``lat``, ``lon``) for a few days of the training (2010), validation (2016) and test (2017) years.

    As the real field, it is a latitude profile, a diurnal cycle that follows the sun westwards (local time) and
    weather patterns that drift eastwards: values far outside [0, 1] before OpenSTL's loader z-scores them, about
    -2.5 .. 2 after, and an hourly change that copying the last frame does not follow.
    """
    import pandas as pd
    import xarray as xr

    folder = root / 'weather_5_625deg' / '2m_temperature'
    folder.mkdir(parents=True)
    lat = np.linspace(-87.1875, 87.1875, 32)
    lon = np.arange(64) * 5.625
    pattern = drifting_blobs(1, 32, 64, 1, rng)[0, ..., 0]
    profile = 250 + 40 * np.cos(np.deg2rad(lat))[:, None]
    for year, count in (days or {2010: 6, 2016: 2, 2017: 3}).items():
        time = pd.date_range(f'{year}-01-01', periods=24 * count, freq='h')
        hours = np.arange(len(time))[:, None, None]
        local_time = hours / 24 + lon[None, None, :] / 360
        diurnal = 6 * np.cos(np.deg2rad(lat))[None, :, None] * np.sin(2 * np.pi * local_time)
        weather = np.stack([np.roll(pattern, hour // 12, axis=1) for hour in hours[:, 0, 0]])
        kelvin = profile[None] + 8 * weather + diurnal
        data = xr.Dataset({'t2m': (('time', 'lat', 'lon'), kelvin.astype(np.float32))},
                          coords={'time': time, 'lat': lat, 'lon': lon})
        data.to_netcdf(folder / f'2m_temperature_{year}_5.625deg.nc')
    return [12, 1, 32, 64]


def write_moving_digits(root: Path, rng: np.random.Generator, folder: str, test_file: str, frames: int = 20,
                        size: int = 64, channels: int = 1, sequences: int = 6) -> list[int]:
    """``<folder>/train-images-idx3-ubyte.gz`` (28 x 28 digits) and ``<folder>/<test_file>``, uint8
    ``(frames, N, H, W)`` (``(frames, N, H, W, 3)`` for RGB, as OpenSTL's Moving MNIST-CIFAR test file)."""
    digits = np.zeros((30, 28, 28), dtype=np.uint8)
    digits[:, 6:22, 10:18] = rng.integers(128, 256, (30, 1, 1), dtype=np.uint8)
    write_idx_images(root / folder / 'train-images-idx3-ubyte.gz', digits)
    shape = (frames, sequences, size, size) + ((3,) if channels == 3 else ())
    np.save(root / folder / test_file, rng.integers(0, 256, shape, dtype=np.uint8))
    return [frames // 2, channels, size, size]
