"""Predict the future of your own clip with a trained checkpoint: the code behind ``tools/predict.py``.

    from openstl_hrvq.api import predict
    frames = predict('work_dirs/quick/checkpoints/best.ckpt', 'my_clip.gif', frames=30, decoding='mean8')

A checkpoint written by the runner holds the run's flat config in ``hyper_parameters``; a checkpoint without
them is read with the ``model_param.json`` its experiment folder holds (a record without ``test_mean`` /
``test_std`` means the frames are used as they are, not de-normalised). A clip is a ``.npy`` array of
``(T, H, W)`` or ``(T, C, H, W)`` frames, an animated ``.gif``, a folder of images (PNG, JPEG or BMP, in name
order), or a video file when imageio has a video plugin (imageio-ffmpeg or PyAV). Image inputs are converted to
the model's channels (grey or RGB); arrays must have them.

Values: uint8 frames (images, videos, uint8 arrays) are pixels 0-255 and are divided by 255. Float frames are in
the model's value range (:attr:`Predictor.value_range`): [0, 1] for the image datasets, checked; a model without
one (``vq_value_range=None``, z-scored WeatherBench) takes them unchanged, whatever their range, and its
predictions are not clipped.
"""
from __future__ import annotations

import json
import logging
import os
import os.path as osp
import re
from dataclasses import dataclass

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image

from openstl_hrvq.api.checkpoints import load_checkpoint
from openstl_hrvq.api.experiment import get_method_class, torch_device
from openstl_hrvq.errors import CheckpointError, ConfigError, DataFileError, MissingFileError
from openstl_hrvq.files import atomic_set
from openstl_hrvq.models.shrvqvae_model import decoding_keys
from openstl_hrvq.visualization import (animation_frames, display_scale, rollout_grid, unit_range, write_gif,
                                        write_image)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')
#: What :func:`save_prediction` writes into its folder.
PREDS_FILE, GIF_FILE, GRID_FILE = 'preds.npy', 'preds.gif', 'grid.png'
#: The value range of image data (and of uint8 pixels / 255).
UNIT_RANGE = (0.0, 1.0)
#: How far outside the value range a float frame may lie (rounding in whatever wrote it).
RANGE_TOLERANCE = 1e-6


@dataclass
class Predictor:
    """A trained method in eval mode with what it needs to predict a clip.

    Attributes:
        method: the LightningModule (its ``model`` is the nn.Module).
        config: the run's flat config.
        checkpoint: the file it was loaded from.
        device: the torch device it runs on.
    """

    method: torch.nn.Module
    config: dict
    checkpoint: str
    device: str

    @property
    def in_shape(self) -> tuple[int, int, int, int]:
        """``(T, C, H, W)`` the model was trained on."""
        return tuple(int(v) for v in self.config['in_shape'])

    @property
    def pre_seq_length(self) -> int:
        return int(self.config.get('pre_seq_length') or self.in_shape[0])

    @property
    def aft_seq_length(self) -> int:
        return int(self.config.get('aft_seq_length') or self.pre_seq_length)

    @property
    def value_range(self) -> tuple[float, float] | None:
        """``(low, high)`` of the frames the model takes and predicts, or None for unbounded data: S-HR-VQVAE's
        tokenizer range (``vq_value_range``); for other methods [0, 1], except on WeatherBench (z-scored)."""
        vqvae = getattr(self.method.model, 'vqvae', None)
        if vqvae is not None and hasattr(vqvae, 'value_range'):
            return vqvae.value_range
        return None if str(self.config.get('dataname', '')).startswith('weather') else UNIT_RANGE

    @property
    def can_roll_out(self) -> bool:
        """Whether the model predicts any horizon (an autoregressive prior), not only ``aft_seq_length`` frames."""
        return hasattr(self.method.model, 'rollout')


def run_record(path: str, state: dict) -> dict:
    """The flat config of the run that wrote checkpoint ``path``: its ``hyper_parameters``, else the experiment
    folder's ``model_param.json`` (``<experiment>/checkpoints/<file>.ckpt`` -> ``<experiment>/model_param.json``)."""
    config = dict(state.get('hyper_parameters') or {})
    if config:
        return config
    record = osp.join(osp.dirname(osp.dirname(osp.abspath(path))), 'model_param.json')
    if not osp.isfile(record):
        raise CheckpointError(f'Checkpoint {path} holds no config (hyper_parameters) and there is no {record} beside '
                              f'it: pass a checkpoint written by tools/train.py, inside its experiment folder.')
    with open(record) as handle:
        return json.load(handle)


def load_predictor(ckpt: str, device: str = 'auto') -> Predictor:
    """Rebuild the method of checkpoint ``ckpt`` from its run's config and load its weights (eval mode)."""
    state = load_checkpoint(ckpt)
    config = run_record(ckpt, state)
    if 'method' not in config or 'in_shape' not in config:
        raise CheckpointError(f'The config of checkpoint {ckpt} names no method or in_shape: pass a checkpoint '
                              f'written by tools/train.py.')
    method = get_method_class(config['method'])(**config)
    try:
        method.load_state_dict(state['state_dict'])
    except RuntimeError as error:
        raise CheckpointError(f'Checkpoint {ckpt} does not fit the model its config builds (it was written by '
                              f'another version of the code): retrain it, or use the code it was trained with.'
                              ) from error
    chosen = torch_device(device)
    method.to(chosen).eval()
    return Predictor(method, config, ckpt, chosen)


# ---------------------------------------------------------------------------------------------- reading clips
def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def _image_frames(images, channels: int) -> np.ndarray:
    """PIL-readable frames -> uint8 ``(T, C, H, W)`` with the model's channels (grey: luminance)."""
    mode = 'L' if channels == 1 else 'RGB'
    images = [image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image)) for image in images]
    frames = [np.asarray(image.convert(mode)) for image in images]
    sizes = {frame.shape for frame in frames}
    if len(sizes) > 1:
        raise DataFileError(f'The frames of the clip differ in size ({sorted(sizes)}): give frames of one size.')
    array = np.stack(frames)
    return array[:, None] if channels == 1 else array.transpose(0, 3, 1, 2)


def _read_video(path: str):
    try:
        return list(iio.imiter(path))
    except (OSError, ValueError, ImportError) as error:
        if 'backend' in str(error) or isinstance(error, ImportError):
            raise DataFileError(f'Reading the video {path} needs a video plugin for imageio: pip install '
                                f'imageio-ffmpeg (or av); or convert the clip to a GIF or a folder of PNGs.') from error
        raise DataFileError(f'The video {path} cannot be read ({error}).') from error


def read_clip(path: str, channels: int = 1) -> np.ndarray:
    """A clip file or folder -> frames ``(T, C, H, W)``: uint8 from images and videos, as stored from ``.npy``.

    Args:
        path: a ``.npy`` of ``(T, H, W)`` or ``(T, C, H, W)``; a ``.gif``; a folder of images; a video file.
        channels: the model's C; image and video frames are converted to it (arrays are not).
    """
    if not osp.exists(path):
        raise MissingFileError(f'No clip at {path}: pass a .npy, a .gif, a folder of PNGs or a video file.')
    if osp.isdir(path):
        names = sorted((name for name in os.listdir(path) if name.lower().endswith(IMAGE_SUFFIXES)), key=_natural_key)
        if not names:
            raise MissingFileError(f'The folder {path} holds no image files ({", ".join(IMAGE_SUFFIXES)}).')
        return _image_frames([Image.open(osp.join(path, name)) for name in names], channels)
    suffix = osp.splitext(path)[1].lower()
    if suffix == '.npy':
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise DataFileError(f'{path} is not a readable .npy array ({error}).') from error
        if array.ndim == 3:
            array = array[:, None]
        if array.ndim != 4:
            raise DataFileError(f'{path} holds an array of shape {array.shape}; expected the frames of one clip as '
                                f'(T, H, W) or (T, C, H, W).')
        return array
    if suffix == '.gif':
        return _image_frames(iio.imread(path, index=None), channels)
    if suffix in VIDEO_SUFFIXES:
        return _image_frames(_read_video(path), channels)
    raise DataFileError(f'Cannot read {path}: give a .npy, a .gif, a folder of images or a video '
                        f'({", ".join(VIDEO_SUFFIXES)}).')


def as_model_frames(clip: np.ndarray, value_range: tuple[float, float] | None = UNIT_RANGE,
                    name: str = 'the clip') -> np.ndarray:
    """float32 frames for a model whose frames lie in ``value_range`` (None: unbounded): uint8 pixels 0-255 are
    divided by 255; floats are checked against ``value_range`` and otherwise passed through unchanged."""
    if clip.dtype == np.uint8:
        return clip.astype(np.float32) / 255.0
    if not np.issubdtype(clip.dtype, np.floating):
        raise DataFileError(f'{name} has dtype {clip.dtype}: give uint8 pixels 0-255 or float frames.')
    low, high = float(np.min(clip)), float(np.max(clip))
    if not np.isfinite([low, high]).all():
        raise DataFileError(f'{name} holds NaN or infinite values: give finite frames.')
    if value_range is not None:
        first, last = value_range
        if low < first - RANGE_TOLERANCE or high > last + RANGE_TOLERANCE:
            raise DataFileError(f'{name} holds floats in [{low:g}, {high:g}]; the model takes [{first:g}, {last:g}]'
                                + (': divide 0-255 pixels by 255, or pass them as uint8.' if value_range == UNIT_RANGE
                                   else '.'))
    return clip.astype(np.float32)


def check_clip(frames: np.ndarray, predictor: Predictor, name: str = 'the clip') -> np.ndarray:
    """The last ``pre_seq_length`` frames of ``(T, C, H, W)``, after checking them against the model."""
    _, channels, height, width = predictor.in_shape
    need = predictor.pre_seq_length
    if frames.shape[1] != channels:
        raise DataFileError(f'{name} has {frames.shape[1]} channel(s) per frame; the model takes {channels}: give '
                            f'(T, {channels}, H, W) frames' + (' or (T, H, W)' if channels == 1 else '') + '.')
    if frames.shape[2:] != (height, width):
        raise DataFileError(f'{name} has frames of {frames.shape[3]}x{frames.shape[2]} pixels; the model was trained '
                            f'on {width}x{height} (width x height): resize the frames to {width}x{height}.')
    if len(frames) < need:
        raise DataFileError(f'{name} has {len(frames)} frame(s); the model predicts from {need} input frames: give '
                            f'at least {need}.')
    if len(frames) > need:
        log.info('%s has %d frames; predicting from its last %d.', name, len(frames), need)
    return frames[-need:]


# ---------------------------------------------------------------------------------------------- predicting
def predict_frames(predictor: Predictor, inputs: np.ndarray, frames: int | None = None,
                   decoding: str | None = None, seed: int | None = 0) -> np.ndarray:
    """Future frames ``(frames, C, H, W)`` of the input frames ``(pre_seq_length, C, H, W)``, both in the model's
    value range (:attr:`Predictor.value_range`; the predictions are clipped to it, unless it is None).

    Args:
        frames: the horizon (default: the trained ``aft_seq_length``); longer horizons need a method that rolls
            out (S-HR-VQVAE, either decode order: :meth:`SHRVQVAE_Model.rollout`).
        decoding: ``'argmax'``, ``'meanN'`` or ``'meanN-expected'`` (default: the run's own decoding).
        seed: seeds the sampling of sampled decodings (None: not seeded).
    """
    frames = int(frames or predictor.aft_seq_length)
    if frames < 1:
        raise ConfigError(f'--frames must be at least 1, got {frames}.')
    model = predictor.method.model
    if frames > predictor.aft_seq_length and not predictor.can_roll_out:
        raise ConfigError(f'{predictor.config["method"]} predicts exactly {predictor.aft_seq_length} frames per '
                          f'pass and cannot roll out further: ask for --frames {predictor.aft_seq_length} or fewer.')
    if decoding is not None:
        if not hasattr(model, 'set_decoding'):
            raise ConfigError(f'{predictor.config["method"]} regresses its frames and has no --decoding to choose.')
        try:
            chosen = decoding_keys(decoding)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        own = {'sample_temperature': model.sample_temperature, 'decoding_samples': model.decoding_samples,
               'decoding_codewords': model.decoding_codewords}
        model.set_decoding(**chosen)
        try:
            return predict_frames(predictor, inputs, frames, None, seed)
        finally:
            model.set_decoding(**own)
    mean, std = predictor.config.get('test_mean'), predictor.config.get('test_std')
    normalised = inputs if mean is None or std is None else (inputs - np.asarray(mean)) / np.asarray(std)
    batch_x = torch.as_tensor(np.asarray(normalised, dtype=np.float32)[None], device=predictor.device)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        if predictor.can_roll_out:
            pred = model.rollout(batch_x, frames)
        else:
            batch_y = batch_x.new_zeros(1, predictor.aft_seq_length, *batch_x.shape[2:])
            pred = predictor.method(batch_x, batch_y)[:, :frames]
    pred = pred[0].float().cpu().numpy()
    if mean is not None and std is not None:
        pred = pred * np.asarray(std) + np.asarray(mean)
    if predictor.value_range is not None:
        pred = np.clip(pred, *predictor.value_range)
    return pred.astype(np.float32)


def predict(ckpt: str | Predictor, clip: str | np.ndarray, frames: int | None = None, decoding: str | None = None,
            device: str = 'auto', seed: int | None = 0) -> np.ndarray:
    """Predict the frames after a clip with a trained checkpoint, for notebooks.

    Args:
        ckpt: a checkpoint path (``work_dirs/<ex_name>/checkpoints/best.ckpt``) or a :class:`Predictor`.
        clip: a path (see :func:`read_clip`) or an array ``(T, H, W)`` / ``(T, C, H, W)``: uint8 pixels 0-255, or
            floats in the model's value range ([0, 1] for image data; any range for a model with
            ``vq_value_range=None``, passed through unchanged); its last ``pre_seq_length`` frames are the input.
        frames, decoding, seed: see :func:`predict_frames`.

    Returns:
        ``(frames, C, H, W)`` float32 in the model's value range (image data: [0, 1]).
    """
    predictor = ckpt if isinstance(ckpt, Predictor) else load_predictor(ckpt, device)
    return predict_frames(predictor, prepare_inputs(predictor, clip), frames, decoding, seed)


def prepare_inputs(predictor: Predictor, clip: str | np.ndarray) -> np.ndarray:
    """The model's input frames ``(pre_seq_length, C, H, W)`` (:func:`as_model_frames`) from a clip path or array."""
    name = clip if isinstance(clip, str) else 'the clip'
    if isinstance(clip, str):
        clip = read_clip(clip, predictor.in_shape[1])
    else:
        clip = np.asarray(clip)
        if clip.ndim == 3:
            clip = clip[:, None]
        if clip.ndim != 4:
            raise DataFileError(f'The clip has shape {clip.shape}; expected (T, H, W) or (T, C, H, W).')
    return as_model_frames(check_clip(clip, predictor, name), predictor.value_range, name)


def save_prediction(out_dir: str, inputs: np.ndarray, preds: np.ndarray, name: str = 'prediction') -> dict[str, str]:
    """Write ``preds.npy`` (the predicted frames ``(N, C, H, W)``, in the data's values), ``preds.gif`` (the
    inputs, then the prediction) and ``grid.png`` (the inputs over the predicted frames) into ``out_dir`` as one set
    (:func:`~openstl_hrvq.files.atomic_set`: a failed write leaves the previous prediction's files whole);
    returns their paths."""
    paths = {'preds': osp.join(out_dir, PREDS_FILE), 'grid': osp.join(out_dir, GRID_FILE),
             'gif': osp.join(out_dir, GIF_FILE)}
    shown_inputs, shown_preds = unit_range(inputs, inputs, preds)      # data outside [0, 1]: the inputs' range
    grid = rollout_grid(shown_inputs, shown_preds, name)
    frames = animation_frames(shown_inputs[None], None, shown_preds[None], name, (0,),
                              scale=2 * display_scale(*inputs.shape[-2:]))
    with atomic_set(paths) as handles:
        np.save(handles['preds'], preds)
        write_image(grid, handles['grid'], paths['grid'])
        write_gif(frames, handles['gif'])
    return paths
