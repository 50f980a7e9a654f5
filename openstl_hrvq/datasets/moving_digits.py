"""Moving-digit videos (Srivastava et al. 2015, as OpenSTL generates them) and their datasets.

A sequence puts ``num_digits`` 28x28 digits on a black ``image_size`` canvas. Each digit starts at a
uniform position with a uniform direction, moves ``step`` of the free range per frame, bounces off
the borders, and is drawn with a pixel-wise maximum. Sequence ``i`` of a stream with seed ``s`` is
drawn from ``numpy.random.default_rng((s, i))``, so it is the same in every worker, epoch layout and
process, and a fixed test set can be generated lazily or written to disk with identical content. A seed may
also be a tuple of ints, ``(a, b)`` keying ``(a, b, i)``: such a stream (the validation set's) is none of the
streams an int seed (a run's training seed) gives.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

DIGIT_SIZE = 28
STEP_LENGTH = 0.1


def bouncing_positions(rng: np.random.Generator, num_objects: int, num_frames: int,
                       step: float = STEP_LENGTH) -> np.ndarray:
    """Positions in [0, 1]^2 of ``num_objects`` objects bouncing inside the unit square.

    Returns:
        float64 ``(num_objects, num_frames, 2)`` as (y, x), one step taken before the first frame.
    """
    position = rng.random((num_objects, 2))
    angle = rng.random(num_objects) * 2 * np.pi
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=1)
    track = np.empty((num_objects, num_frames, 2))
    for frame in range(num_frames):
        position = position + velocity * step
        outside = (position <= 0) | (position >= 1)
        velocity = np.where(outside, -velocity, velocity)
        position = np.clip(position, 0, 1)
        track[:, frame] = position
    return track


def render_sequence(digits: np.ndarray, positions: np.ndarray, image_size: int) -> np.ndarray:
    """Draw digits at integer offsets with a pixel-wise maximum.

    Args:
        digits: uint8 ``(K, d, d)``; positions: float ``(K, T, 2)`` in [0, 1] (y, x).

    Returns:
        uint8 ``(T, image_size, image_size)``.
    """
    size = digits.shape[-1]
    offsets = ((image_size - size) * positions).astype(np.int64)
    frames = np.zeros((positions.shape[1], image_size, image_size), dtype=np.uint8)
    for digit, track in zip(digits, offsets):
        for frame, (top, left) in zip(frames, track):
            window = frame[top:top + size, left:left + size]
            np.maximum(window, digit, out=window)
    return frames


def stream_key(seed: int | tuple[int, ...], *more: int) -> tuple[int, ...]:
    """The entropy of a stream's generator: ``seed`` (an int or a tuple of ints) followed by ``more``."""
    return (*(seed if isinstance(seed, tuple) else (seed,)), *more)


def generate_sequence(digits: np.ndarray, seed: int | tuple[int, ...], index: int, num_frames: int,
                      image_size: int = 64, num_digits: int = 2) -> np.ndarray:
    """Sequence ``index`` of the stream ``seed``: digits ``(N, 28, 28)`` uint8 -> ``(T, H, W)`` uint8."""
    rng = np.random.default_rng(stream_key(seed, index))
    chosen = digits[rng.integers(len(digits), size=num_digits)]
    return render_sequence(chosen, bouncing_positions(rng, num_digits, num_frames), image_size)


def generate_sequences(digits: np.ndarray, seed: int, num_sequences: int, num_frames: int, image_size: int = 64,
                       num_digits: int = 2) -> np.ndarray:
    """A whole fixed set in the ``*_test_seq.npy`` layout: uint8 ``(T, num_sequences, H, W)``."""
    return np.stack([generate_sequence(digits, seed, index, num_frames, image_size, num_digits)
                     for index in range(num_sequences)], axis=1)


def augment_clip(frames: torch.Tensor, rng: np.random.Generator, crop_scale: float,
                 flips: tuple[tuple[tuple[int, ...], float], ...]) -> torch.Tensor:
    """Zoom in by ``1/crop_scale``, crop back to size at a random offset, then maybe flip.

    Args:
        frames: ``(T, C, H, W)`` float.
        flips: ``(dims, probability)`` options tried in order; the first one drawn is applied.
    """
    height, width = frames.shape[-2:]
    zoomed = F.interpolate(frames, scale_factor=1 / crop_scale, mode='bilinear')
    top = int(rng.integers(zoomed.shape[-2] - height + 1))
    left = int(rng.integers(zoomed.shape[-1] - width + 1))
    frames = zoomed[..., top:top + height, left:left + width]
    for dims, probability in flips:
        if rng.random() < probability:
            return torch.flip(frames, dims=dims)
    return frames


def split_clip(frames: np.ndarray, pre_seq_length: int, aft_seq_length: int, rng: np.random.Generator | None,
               crop_scale: float, flips) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(T, H, W)`` -> inputs ``(pre, 1, H, W)`` and targets ``(aft, 1, H, W)``, float32 in [0, 1]."""
    # Divide in float64 then round to float32, as OpenSTL does, so test inputs match it bit for bit;
    # numpy keeps this small per-item work off torch's (contended) intra-op thread pool.
    clip = torch.from_numpy((frames[:pre_seq_length + aft_seq_length, None] / 255.0).astype(np.float32))
    if rng is not None:
        clip = augment_clip(clip, rng, crop_scale, flips)
    return clip[:pre_seq_length].contiguous(), clip[pre_seq_length:].contiguous()


class _MovingDigitsBase(Dataset):
    mean, std = 0.0, 1.0
    crop_scale = 0.94
    flips = (((2, 3), 0.75), ((2,), 0.75), ((3,), 0.75))  # rotate 180, else vertical, else horizontal

    def __init__(self, pre_seq_length: int, aft_seq_length: int, data_name: str):
        self.pre_seq_length = pre_seq_length
        self.aft_seq_length = aft_seq_length
        self.data_name = data_name


class GeneratedMovingDigits(_MovingDigitsBase):
    """Moving digits drawn on the fly; item ``i`` is sequence ``i`` of the stream ``seed``.

    Any non-negative index is valid, so a sampler can ask for fresh sequences every epoch
    (:class:`~openstl_hrvq.datasets.loaders.EpochStreamSampler`); with a plain sampler the
    ``length`` items form a fixed, lazily generated set.

    Items: ``(inputs (pre, 1, H, W), targets (aft, 1, H, W))`` float32 in [0, 1].
    """

    def __init__(self, digits: np.ndarray, length: int, seed: int | tuple[int, ...],
                 pre_seq_length: int = 10, aft_seq_length: int = 10, image_size: int = 64, num_digits: int = 2,
                 use_augment: bool = False, data_name: str = 'mnist'):
        super().__init__(pre_seq_length, aft_seq_length, data_name)
        self.digits = digits
        self.length = length
        self.seed = seed
        self.image_size = image_size
        self.num_digits = num_digits
        self.use_augment = use_augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        frames = generate_sequence(self.digits, self.seed, index, self.pre_seq_length + self.aft_seq_length,
                                   self.image_size, self.num_digits)
        rng = np.random.default_rng(stream_key(self.seed, index, 1)) if self.use_augment else None
        return split_clip(frames, self.pre_seq_length, self.aft_seq_length, rng, self.crop_scale, self.flips)


class FixedMovingDigits(_MovingDigitsBase):
    """A fixed test set in the ``*_test_seq.npy`` layout, uint8 ``(frames, sequences, H, W)``.

    Items: ``(inputs (pre, 1, H, W), targets (aft, 1, H, W))`` float32 in [0, 1].
    """

    def __init__(self, sequences: np.ndarray, pre_seq_length: int = 10, aft_seq_length: int = 10,
                 length: int | None = None, data_name: str = 'mnist'):
        super().__init__(pre_seq_length, aft_seq_length, data_name)
        self.sequences = sequences
        self.length = sequences.shape[1] if length is None else min(length, sequences.shape[1])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(f'sequence {index} out of range for {self.length} test sequences')
        return split_clip(self.sequences[:, index], self.pre_seq_length, self.aft_seq_length, None,
                          self.crop_scale, self.flips)
