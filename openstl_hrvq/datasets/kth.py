"""KTH Action with OpenSTL's layout and protocol.

Layout: ``data_root/kth/<action>/personXX_<action>_dY_uncomp/image_NNNN.<png|jpg>`` (PredRNN's frame
release, which OpenSTL's ``download_kth.sh`` fetches). Persons 01-16 train, 17-25 test; frames are
grey (the first channel of RGB files), resized bilinearly to ``in_shape[-1]`` squared.

Windows of ``pre + aft`` consecutive frames are taken per video as OpenSTL takes them: scanning back
from the video's last frame, a window is kept when its frame numbers are consecutive; after a kept
window the scan jumps a whole window back for boxing, handclapping, handwaving and walking (disjoint
windows) and 3 frames back for jogging and running (overlapping windows), otherwise 1 frame back.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from openstl_hrvq.errors import DataFileError, MissingFileError

from .digit_files import GET_DATA_HINT
from .loaders import build_loaders, check_val_from, default_val_size, validation_mask
from .moving_digits import augment_clip

logger = logging.getLogger(__name__)

DISJOINT_ACTIONS = ('boxing', 'handclapping', 'handwaving', 'walking')
OVERLAPPING_ACTIONS = ('jogging', 'running')
ACTIONS = DISJOINT_ACTIONS + OVERLAPPING_ACTIONS
OVERLAPPING_STRIDE = 3
TRAIN_PERSONS = tuple(range(1, 17))
TEST_PERSONS = tuple(range(17, 26))
KTH_DOWNLOAD = 'https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/kth_action.zip'
VIDEO_DIR = re.compile(r'^person(\d\d)_')


def window_starts(frame_numbers: list[int], seq_len: int, stride: int) -> list[int]:
    """Start positions (in the video's frame list, ascending) of the windows OpenSTL takes.

    Args:
        frame_numbers: the NNNN of each frame file, in sorted file order.
        seq_len: frames per window; stride: how far the scan jumps back after a kept window.
    """
    starts = []
    end = len(frame_numbers) - 1
    while end >= seq_len - 1:
        start = end - seq_len + 1
        if frame_numbers[end] - frame_numbers[start] == seq_len - 1:
            starts.append(start)
            end -= stride
        else:
            end -= 1
    return starts[::-1]


@dataclass
class KTHSplit:
    """All frames of one split and where its windows start.

    ``frames``: uint8 ``(N, h, w)`` at the files' resolution; ``starts``: int64 ``(M,)`` indices into
    ``frames``; ``videos``: the video folder of each window.
    """

    frames: np.ndarray
    starts: np.ndarray
    videos: list[str]

    def windows(self, keep: np.ndarray) -> 'KTHSplit':
        """The same frames with only the windows where the boolean ``keep`` ``(M,)`` is True."""
        return KTHSplit(self.frames, self.starts[keep], [video for video, kept in zip(self.videos, keep) if kept])


def _read_frame(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image)
    return pixels[..., 0] if pixels.ndim == 3 else pixels


def _missing_kth(what: Path) -> FileNotFoundError:
    return MissingFileError(
        f'KTH not found: missing {what}; expected data_root/kth/<action>/personXX_<action>_dY_uncomp/'
        f'image_NNNN.png for actions {", ".join(ACTIONS)} (frames: {KTH_DOWNLOAD}); {GET_DATA_HINT}.')


def check_layout(root: str | Path) -> None:
    """Raise the one "KTH not found" error unless ``root`` (the ``kth`` folder) has every action folder and, in
    them, frames of both the training and the test persons.

    Both loaders get this check first: OpenSTL's fails on an empty or partial folder with a bare ``os`` error,
    and an empty ``kth/`` folder is as missing as no folder. It lists folders only (reading the frames is the
    loaders' job).
    """
    root = Path(root)
    if not root.is_dir() or not any(root.iterdir()):
        raise _missing_kth(root)
    for action in ACTIONS:
        if not (root / action).is_dir():
            raise _missing_kth(root / action)
    for persons in (TRAIN_PERSONS, TEST_PERSONS):
        videos = (video for action in ACTIONS for video in (root / action).iterdir()
                  if (match := VIDEO_DIR.match(video.name)) and int(match.group(1)) in persons)
        if not any(any(p.name.startswith('image') for p in video.iterdir()) for video in videos if video.is_dir()):
            raise _missing_kth(root / ACTIONS[0] / f'person{persons[0]:02d}_{ACTIONS[0]}_d1_uncomp')


def scan_kth(root: str | Path, persons: tuple[int, ...], seq_len: int) -> KTHSplit:
    """Read the frames of ``persons`` under ``root`` (the ``kth`` folder) and index their windows."""
    root = Path(root)
    frames, starts, videos = [], [], []
    offset, frame_shape = 0, None
    for action in ACTIONS:
        action_dir = root / action
        if not action_dir.is_dir():
            raise _missing_kth(action_dir)
        stride = seq_len if action in DISJOINT_ACTIONS else OVERLAPPING_STRIDE
        for video_dir in sorted(p for p in action_dir.iterdir() if p.is_dir()):
            match = VIDEO_DIR.match(video_dir.name)
            if match is None or int(match.group(1)) not in persons:
                continue
            files = sorted(p for p in video_dir.iterdir() if p.name.startswith('image'))
            numbers = [int(p.name[6:10]) for p in files]
            video = [_read_frame(p) for p in files]
            for path, pixels in zip(files, video):
                if frame_shape is None:
                    frame_shape = pixels.shape
                if pixels.shape != frame_shape or pixels.ndim != 2:
                    raise DataFileError(f'KTH frame {path} is {pixels.shape}, the others {frame_shape}; '
                                        f'all frames must share one size ({GET_DATA_HINT}).')
            video_starts = window_starts(numbers, seq_len, stride)
            starts.extend(offset + s for s in video_starts)
            videos.extend([video_dir.name] * len(video_starts))
            frames.extend(video)
            offset += len(video)
    if not frames:
        raise _missing_kth(root / ACTIONS[0] / f'person{persons[0]:02d}_{ACTIONS[0]}_d1_uncomp')
    return KTHSplit(np.stack(frames), np.asarray(starts, dtype=np.int64), videos)


class KTHClips(Dataset):
    """Windows of a :class:`KTHSplit`.

    Items: ``(inputs (pre, 1, S, S), targets (aft, 1, S, S))`` float32 in [0, 1], S = ``image_size``.
    """

    mean, std = 0.0, 1.0
    crop_scale = 0.95
    flips = (((3,), 0.5),)  # horizontal only: actions are not symmetric under a vertical flip

    def __init__(self, split: KTHSplit, pre_seq_length: int = 10, aft_seq_length: int = 20, image_size: int = 128,
                 use_augment: bool = False, length: int | None = None, data_name: str = 'kth'):
        self.frames = split.frames
        self.starts = split.starts
        if length is not None and length < len(self.starts):
            # An evenly spread subset keeps every action and person in a capped quick run.
            self.starts = self.starts[np.linspace(0, len(self.starts) - 1, length).round().astype(np.int64)]
        self.pre_seq_length = pre_seq_length
        self.aft_seq_length = aft_seq_length
        self.image_size = image_size
        self.use_augment = use_augment
        self.data_name = data_name

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int):
        start = int(self.starts[index])
        frames = self.frames[start:start + self.pre_seq_length + self.aft_seq_length, None]
        clip = torch.from_numpy(frames.astype(np.float32) / np.float32(255))
        if clip.shape[-2:] != (self.image_size, self.image_size):
            clip = F.interpolate(clip, size=(self.image_size, self.image_size), mode='bilinear', align_corners=False)
        if self.use_augment:
            rng = np.random.default_rng(int(torch.randint(2 ** 62, ())))  # seeded per worker by the DataLoader
            clip = augment_clip(clip, rng, self.crop_scale, self.flips)
        return clip[:self.pre_seq_length].contiguous(), clip[self.pre_seq_length:].contiguous()


def load_data(batch_size: int, val_batch_size: int, data_root: str | Path, num_workers: int = 0,
              pre_seq_length: int = 10, aft_seq_length: int = 20, in_shape=(10, 1, 128, 128),
              distributed: bool = False, use_augment: bool = False, use_prefetcher: bool = False,
              drop_last: bool = False, train_size: int | None = None, test_size: int | None = None,
              data_name: str = 'kth', val_from: str = 'train', val_size: int | None = None):
    """``(train, val, test)`` loaders of ``(inputs (B, pre, 1, S, S), targets (B, aft, 1, S, S))`` in [0, 1].

    With ``val_from='train'`` val holds the windows of whole training videos drawn with the fixed validation seed
    (``val_size`` windows; None: as many as the test set, at most 1,000 and a tenth of the training windows), and
    training keeps the other videos. ``val_from='test'`` validates on the test set, as OpenSTL does (it returns
    no KTH validation loader). ``train_size`` / ``test_size`` keep an evenly spread subset of the windows.
    """
    check_val_from(val_from)
    root = Path(data_root) / 'kth'
    check_layout(root)
    seq_len = pre_seq_length + aft_seq_length
    image_size = in_shape[-1] if in_shape is not None else 128
    train_split = scan_kth(root, TRAIN_PERSONS, seq_len)
    test_split = scan_kth(root, TEST_PERSONS, seq_len)
    logger.info('kth: %d train windows (%d frames), %d test windows (%d frames) of %d frames from %s',
                len(train_split.starts), len(train_split.frames), len(test_split.starts), len(test_split.frames),
                seq_len, root)
    test_set = KTHClips(test_split, pre_seq_length, aft_seq_length, image_size, False, test_size, data_name)
    val_set = None
    if val_from == 'train':
        size = default_val_size(len(test_set), len(train_split.starts)) if val_size is None else val_size
        held_out = validation_mask(np.asarray(train_split.videos), size)
        val_split = train_split.windows(held_out)
        val_set = KTHClips(val_split, pre_seq_length, aft_seq_length, image_size, False, size, data_name)
        train_split = train_split.windows(~held_out)
        logger.info('kth: %d validation windows from %d training videos held out of training', len(val_set),
                    len(set(val_split.videos)))
    train_set = KTHClips(train_split, pre_seq_length, aft_seq_length, image_size, use_augment, train_size, data_name)
    return build_loaders(train_set, test_set, batch_size, val_batch_size, num_workers, distributed, drop_last,
                         val_set=val_set)
