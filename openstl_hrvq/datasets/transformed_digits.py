"""Transformed-digit sequences for the frame interpolation / extrapolation benchmark (from a SimVPv2 study).

A sequence shows one real handwritten digit (the embedded MNIST digits) on a 36x36 canvas for 16 frames. Each
sequence draws its own transform -- a rotation step, a translation velocity and an intensity change -- scaled by
a per-sequence strength in [0, 1], so the set runs from almost static digits to aggressive ones. The transform is
autoregressive: the pose and brightness of frame t+1 are those of frame t moved by one more step (positions and
brightness bounce off their limits). Every frame is rendered from the source digit at that pose, so the
sequence carries no accumulated resampling blur.

Splits (``SPLITS``): ``n6-train`` -- 400 sequences, one per training 6 of :func:`embedded_digit_split`;
``n6-test`` -- 400 sequences from the 100 held-out 6s (each digit under four different transforms);
``n3-test`` -- 100 sequences, one per held-out 3, for out-of-sample testing; ``n6-val`` -- 400 sequences of the
training 6s under transforms of their own, for validation. No test digit is in a training or validation split.
Sequence ``i`` of a split is drawn from ``numpy.random.default_rng((SEED, split_code, i))``.

Frames 4 and 16 (1-based) are the targets of the protocol and never enter training: training windows are the
sliding 8-frame windows (4 in, 4 out) over the complete frames 5-15. The ``-all`` training set adds each window
reversed in time and corrupted copies (additive noise, one blanked input frame, both); corruption always
touches the inputs only.

The dataset is registered as ``tdigits`` (trains on ``n6``) and ``tdigits_all`` (trains on ``n6-all``); their
test loaders hold the clean windows of ``n6-test``, their validation loaders (which the runner uses to pick
checkpoints) those of ``n6-val`` (``val_from='test'``: of ``n6-test``, OpenSTL's arrangement).
The benchmark itself (:mod:`openstl_hrvq.interpolation`) scores the first predicted frame of the protocol.
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from openstl_hrvq.errors import ConfigError

from .embedded_digits import embedded_digit_split, load_embedded_digits
from .loaders import build_loaders, check_val_from
from .moving_digits import split_clip

log = logging.getLogger(__name__)

SEED = 20230401
CANVAS = 36
NUM_FRAMES = 16
PRE_SEQ_LENGTH = AFT_SEQ_LENGTH = 4
WINDOW = PRE_SEQ_LENGTH + AFT_SEQ_LENGTH
INTERP_FRAME, EXTRAP_FRAME = 4, 16  # 1-based, as the study numbers them
TRAIN_FRAMES = (5, 15)  # 1-based, inclusive: the complete middle of every training sequence

#: Largest per-frame steps, reached at strength 1.
MAX_ROTATION_DEG = 12.0
MAX_SPEED_PX = 1.2
MAX_INTENSITY_STEP = 0.05
#: The digit centre stays within this many pixels of the canvas centre (the ink is at most ~20 px tall).
MAX_OFFSET_PX = 7.0
INTENSITY_RANGE = (0.3, 1.0)

NOISE_STD = 0.1
TRAIN_SETS = ('n6', 'n6-all')


@dataclass(frozen=True)
class Split:
    """Which digits a split draws from: class, the half of :func:`embedded_digit_split`, and its size."""

    code: int
    digit_class: int
    part: str
    num_sequences: int


SPLITS = {
    'n6-train': Split(0, 6, 'train', 400),
    'n6-test': Split(1, 6, 'test', 400),
    'n3-test': Split(2, 3, 'test', 100),
    'n6-val': Split(3, 6, 'train', 400),
}


def split_digit_ids(name: str) -> np.ndarray:
    """Indices into :func:`load_embedded_digits` of the digit shown by each sequence of split ``name``.

    Returns:
        int64 ``(num_sequences,)``; a split with fewer digits than sequences cycles through its digits.
    """
    split = _split(name)
    _, labels = load_embedded_digits()
    train_idx, test_idx = embedded_digit_split()
    pool = train_idx if split.part == 'train' else test_idx
    pool = pool[labels[pool] == split.digit_class]
    return pool[np.arange(split.num_sequences) % len(pool)]


def _split(name: str) -> Split:
    if name not in SPLITS:
        raise ConfigError(f'Unknown transformed-digit split {name!r}: choose one of {sorted(SPLITS)}.')
    return SPLITS[name]


def _reflect(value: float, step: float, low: float, high: float) -> tuple[float, float]:
    """One autoregressive step of a bounded state: move, and bounce off ``[low, high]`` by reversing the step."""
    value += step
    if value < low or value > high:
        step = -step
        value = min(max(2 * (low if value < low else high) - value, low), high)
    return value, step


def draw_trajectory(rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> dict:
    """A sequence's transform and the pose it produces frame after frame.

    Returns:
        ``strength`` (float in [0, 1]) and float64 arrays of length ``num_frames``: ``angle`` (degrees),
        ``offset`` ``(num_frames, 2)`` (x, y pixels from the canvas centre) and ``intensity`` (peak brightness).
    """
    strength = float(rng.random())
    rotation_step = strength * MAX_ROTATION_DEG * rng.choice((-1.0, 1.0))
    heading = rng.random() * 2 * math.pi
    velocity = strength * MAX_SPEED_PX * np.array([math.cos(heading), math.sin(heading)])
    intensity_step = strength * MAX_INTENSITY_STEP * rng.choice((-1.0, 1.0))
    angle = rng.uniform(-15.0, 15.0)
    offset = rng.uniform(-0.5 * MAX_OFFSET_PX, 0.5 * MAX_OFFSET_PX, size=2)
    intensity = rng.uniform(0.7, 1.0)

    angles, offsets, intensities = np.empty(num_frames), np.empty((num_frames, 2)), np.empty(num_frames)
    for frame in range(num_frames):
        angles[frame], offsets[frame], intensities[frame] = angle, offset, intensity
        angle += rotation_step
        for axis in range(2):
            offset[axis], velocity[axis] = _reflect(offset[axis], velocity[axis], -MAX_OFFSET_PX, MAX_OFFSET_PX)
        intensity, intensity_step = _reflect(intensity, intensity_step, *INTENSITY_RANGE)
    return {'strength': strength, 'angle': angles, 'offset': offsets, 'intensity': intensities}


def render(digits: np.ndarray, angle: np.ndarray, offset: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Draw 28x28 uint8 digits at their poses on the canvas, bilinear, in float64 for bit-exact repeats.

    Args:
        digits: uint8 ``(N, 28, 28)``; angle: ``(N, T)`` degrees; offset: ``(N, T, 2)`` pixels (x, y);
        intensity: ``(N, T)`` peak brightness.

    Returns:
        uint8 ``(N, T, CANVAS, CANVAS)``.
    """
    num, frames = angle.shape
    pad = (CANVAS - digits.shape[-1]) // 2
    source = torch.from_numpy(np.pad(digits, ((0, 0), (pad, pad), (pad, pad))).astype(np.float64) / 255.0)
    source = source.unsqueeze(1).repeat_interleave(frames, dim=0)
    theta = torch.from_numpy(np.deg2rad(angle).reshape(-1))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # affine_grid maps output to source coordinates, so it takes the inverse pose: un-shift, then rotate back.
    shift = torch.from_numpy(offset.reshape(-1, 2, 1)) * (2.0 / CANVAS)
    rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    matrix = torch.cat([rotation, -(rotation @ shift)], dim=-1)
    grid = F.affine_grid(matrix, (num * frames, 1, CANVAS, CANVAS), align_corners=False)
    warped = F.grid_sample(source, grid, mode='bilinear', padding_mode='zeros', align_corners=False)[:, 0]
    warped = warped * torch.from_numpy(intensity.reshape(-1, 1, 1))
    frames_u8 = (warped.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return frames_u8.reshape(num, frames, CANVAS, CANVAS)


@functools.lru_cache(maxsize=None)
def _generated(name: str) -> tuple[np.ndarray, np.ndarray]:
    split = _split(name)
    images, _ = load_embedded_digits()
    trajectories = [draw_trajectory(np.random.default_rng((SEED, split.code, index)))
                    for index in range(split.num_sequences)]
    poses = {key: np.stack([t[key] for t in trajectories]) for key in ('angle', 'offset', 'intensity')}
    sequences = render(images[split_digit_ids(name)], **poses)
    strengths = np.array([t['strength'] for t in trajectories])
    sequences.setflags(write=False)
    strengths.setflags(write=False)
    return sequences, strengths


def generate_split(name: str) -> np.ndarray:
    """All sequences of split ``name`` (generated once per process): uint8 ``(N, 16, 36, 36)``."""
    return _generated(name)[0]


def split_strengths(name: str) -> np.ndarray:
    """The transform strength in [0, 1] of every sequence of split ``name``: float64 ``(N,)``."""
    return _generated(name)[1]


def training_frames(sequences: np.ndarray) -> np.ndarray:
    """The frames training may see, 5-15 (1-based): ``(N, 16, ...)`` -> ``(N, 11, ...)``; 4 and 16 are held out."""
    return sequences[:, TRAIN_FRAMES[0] - 1:TRAIN_FRAMES[1]]


def seeded_generator(*keys: int) -> torch.Generator:
    """A torch generator seeded from integer ``keys`` (numpy's SeedSequence mixes them), the same on any machine."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(keys).generate_state(1)[0]))


def add_noise(frames: torch.Tensor, generator: torch.Generator, std: float = NOISE_STD) -> torch.Tensor:
    """Additive Gaussian noise, clipped back to the [0, 1] frame range. frames: ``(..., H, W)`` float."""
    noise = torch.randn(frames.shape, generator=generator, dtype=frames.dtype)
    return (frames + std * noise.to(frames.device)).clamp(0, 1)


def blank_frame(frames: torch.Tensor, index: int) -> torch.Tensor:
    """A copy of ``frames`` ``(T, ...)`` with frame ``index`` missing (all zeros)."""
    frames = frames.clone()
    frames[index] = 0
    return frames


def corrupt_inputs(inputs: torch.Tensor, noise: bool, missing: int, generator: torch.Generator) -> torch.Tensor:
    """Apply a test / training variant to the input frames ``(T_in, C, H, W)``: noise, then a blanked frame.

    ``missing`` is the index of the frame to blank, or -1 for none.
    """
    if noise:
        inputs = add_noise(inputs, generator)
    if missing >= 0:
        inputs = blank_frame(inputs, missing)
    return inputs


def window_table(num_sequences: int, train_set: str, seed: int = SEED) -> np.ndarray:
    """Every training window of ``train_set`` as rows ``(sequence, start, reversed, noise, missing)``.

    ``start`` indexes :func:`training_frames`; ``missing`` is the blanked input frame or -1. Rows come in blocks:
    clean, then for ``n6-all`` reversed, noise, miss and noise + miss. Each corrupted copy is taken from the
    forward or the reversed window with equal odds, so robustness is learnt in both directions.

    Returns:
        int64 ``(num_sequences * 4 * k, 5)`` with k = 1 for ``n6`` and 5 for ``n6-all``.
    """
    if train_set not in TRAIN_SETS:
        raise ConfigError(f'Unknown train_set {train_set!r}: choose one of {TRAIN_SETS}.')
    per_sequence = (TRAIN_FRAMES[1] - TRAIN_FRAMES[0] + 1) - WINDOW + 1
    sequence, start = np.divmod(np.arange(num_sequences * per_sequence), per_sequence)
    none = np.zeros_like(start)
    blocks = [np.stack([sequence, start, none, none, none - 1], 1)]
    if train_set == 'n6-all':
        rng = np.random.default_rng((seed, 7))
        blocks.append(np.stack([sequence, start, none + 1, none, none - 1], 1))
        for noise, miss in ((1, False), (0, True), (1, True)):
            direction = rng.integers(0, 2, size=len(start))
            missing = rng.integers(0, PRE_SEQ_LENGTH, size=len(start)) if miss else none - 1
            blocks.append(np.stack([sequence, start, direction, none + noise, missing], 1))
    return np.concatenate(blocks).astype(np.int64)


class TransformedDigitWindows(Dataset):
    """8-frame windows of transformed-digit sequences as ``(inputs, targets)`` pairs.

    Items: ``(inputs (4, 1, 36, 36), targets (4, 1, 36, 36))`` float32 in [0, 1]; a reversed window is the
    same eight frames in reverse order, so its inputs are the window's last four frames, latest first.

    Args:
        sequences: uint8 ``(N, T, 36, 36)`` frames the windows slide over (already cut to frames 5-15).
        windows: rows of :func:`window_table`.
        seed: seeds the noise of item ``i`` as ``(seed, i)``, so every epoch sees the same corrupted copies.
    """

    mean, std = 0.0, 1.0

    def __init__(self, sequences: np.ndarray, windows: np.ndarray, seed: int = SEED, data_name: str = 'tdigits'):
        self.sequences = sequences
        self.windows = windows
        self.seed = seed
        self.data_name = data_name
        self.pre_seq_length, self.aft_seq_length = PRE_SEQ_LENGTH, AFT_SEQ_LENGTH

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        sequence, start, reverse, noise, missing = (int(v) for v in self.windows[index])
        frames = self.sequences[sequence, start:start + WINDOW]
        inputs, targets = split_clip(frames[::-1] if reverse else frames, PRE_SEQ_LENGTH, AFT_SEQ_LENGTH,
                                     None, 0.0, ())
        generator = seeded_generator(self.seed, index) if noise else None
        return corrupt_inputs(inputs, bool(noise), missing, generator), targets


def build_window_datasets(train_set: str = 'n6', train_size: int | None = None, test_size: int | None = None,
                          data_name: str = 'tdigits') -> tuple[TransformedDigitWindows, TransformedDigitWindows]:
    """Training windows of ``train_set`` and clean validation windows of ``n6-test``.

    ``train_size`` / ``test_size`` cap the number of *sequences* (each gives 4 windows, x5 for ``n6-all``).
    """
    train_sequences = training_frames(generate_split('n6-train'))[:train_size]
    test_sequences = training_frames(generate_split('n6-test'))[:test_size]
    train = TransformedDigitWindows(train_sequences, window_table(len(train_sequences), train_set),
                                    data_name=data_name)
    test = TransformedDigitWindows(test_sequences, window_table(len(test_sequences), 'n6'), data_name=data_name)
    return train, test


def load_data(batch_size: int, val_batch_size: int, data_root: str | None = None, num_workers: int = 0,
              pre_seq_length: int = PRE_SEQ_LENGTH, aft_seq_length: int = AFT_SEQ_LENGTH,
              distributed: bool = False, use_augment: bool = False, drop_last: bool = False,
              train_set: str = 'n6', train_size: int | None = None, test_size: int | None = None,
              data_name: str = 'tdigits', val_from: str = 'train', val_size: int | None = None):
    """``(train, val, test)`` loaders of ``(batch_x (B, 4, 1, 36, 36), batch_y (B, 4, 1, 36, 36))``.

    The data are generated (no files), so ``data_root`` is not read; ``use_augment`` is refused because the
    task defines its own augmentation (``train_set='n6-all'``). ``train_size`` / ``test_size`` / ``val_size``
    cap sequences; val holds the clean windows of ``n6-val`` (None: as many sequences as the test set), or with
    ``val_from='test'`` the test set itself.
    """
    check_val_from(val_from)
    if (pre_seq_length, aft_seq_length) != (PRE_SEQ_LENGTH, AFT_SEQ_LENGTH):
        raise ConfigError(f'The transformed-digit task is {PRE_SEQ_LENGTH} -> {AFT_SEQ_LENGTH} frames, got '
                          f'{pre_seq_length} -> {aft_seq_length}: remove pre/aft_seq_length from the config.')
    if use_augment:
        raise ConfigError("use_augment is not defined for the transformed-digit task: train on "
                          "train_set='n6-all' (dataset tdigits_all) for its augmentation.")
    train, test = build_window_datasets(train_set, train_size, test_size, data_name)
    val = None
    if val_from == 'train':
        size = len(test.sequences) if val_size is None else val_size
        val_sequences = training_frames(generate_split('n6-val'))[:size]
        val = TransformedDigitWindows(val_sequences, window_table(len(val_sequences), 'n6'), data_name=data_name)
    log.info('Transformed digits: %d training windows (%s), %d validation windows (%s), %d test windows (n6-test)',
             len(train), train_set, len(test if val is None else val), 'n6-test' if val is None else 'n6-val',
             len(test))
    return build_loaders(train, test, batch_size, val_batch_size, num_workers, distributed, drop_last, val_set=val)


def dataset_entry(train_set: str) -> dict:
    """The registry parameters of the task trained on ``train_set``."""
    return {'in_shape': [PRE_SEQ_LENGTH, 1, CANVAS, CANVAS], 'pre_seq_length': PRE_SEQ_LENGTH,
            'aft_seq_length': AFT_SEQ_LENGTH, 'total_length': WINDOW, 'data_name': 'tdigits',
            'metrics': ['mse', 'mae', 'ssim', 'psnr'], 'train_set': train_set}


#: Registered dataset name -> training set (the registry registers one dataset per training set).
DATASET_NAMES = {'tdigits': 'n6', 'tdigits_all': 'n6-all'}
