"""Pictures of video predictions: labelled frame grids (PNG) and animations (GIF / MP4).

Everything here works on float frames in [0, 1] laid out as ``(T, C, H, W)`` with C = 1 (grey) or
C = 3 (RGB); other channel counts (TaxiBJ's two flows) show each channel in grey side by side. Values outside
[0, 1] are clipped for display only; :func:`unit_range` first maps data in another range (z-scored WeatherBench)
onto it, from the range of the data shown (inputs and truth), which :func:`save_prediction_pictures` and the
leaderboard's pictures do. Images are composed with numpy and
Pillow (no figure backend), so they come out pixel-exact: one frame pixel is ``scale`` x ``scale``
image pixels.
"""
from __future__ import annotations

import os.path as osp
from typing import Mapping, Sequence

import imageio.v2 as imageio
import imageio.v3 as imageio_v3
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from openstl_hrvq.files import atomic_path, save_with

BACKGROUND = 255
TEXT_COLOUR = (0, 0, 0)
PAD = 2
LABEL_HEIGHT = 14
SEPARATOR = 8


def frame_to_rgb(frame: np.ndarray, scale: int = 1) -> np.ndarray:
    """One frame ``(C, H, W)`` (or ``(H, W)``) in [0, 1] -> uint8 ``(H*scale, W*scale, 3)``
    (``(H*scale, C*W*scale, 3)``, channels side by side in grey, unless C is 1 or 3)."""
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim == 2:
        frame = frame[None]
    if frame.ndim != 3:
        raise ValueError(f'Expected a frame of shape (C, H, W), got {frame.shape}.')
    if frame.shape[0] not in (1, 3):
        frame = np.concatenate(list(frame), axis=-1)[None]
    image = np.round(np.clip(frame, 0.0, 1.0) * 255).astype(np.uint8).transpose(1, 2, 0)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    return image


def _font():
    return ImageFont.load_default()


def _text_width(text: str, font) -> int:
    left, _, right, _ = ImageDraw.Draw(Image.new('RGB', (1, 1))).textbbox((0, 0), text, font=font)
    return right - left


def labelled_grid(rows: Sequence[tuple[str, Sequence[np.ndarray | None]]], scale: int = 1,
                  column_titles: Sequence[str] | None = None, title: str | None = None) -> Image.Image:
    """Compose rows of frames into one image with each row's label on its left.

    Args:
        rows: ``(label, frames)`` pairs; each frame ``(C, H, W)`` in [0, 1], all of one size; a ``None``
            frame leaves its cell blank (rows may be shorter than the longest one); a row with no frames
            is a thin separator.
        scale: integer upscaling of every frame.
        column_titles: optional text above each column.
        title: optional line of text above everything.

    Returns:
        The RGB image.
    """
    frames = [frame for _, row in rows for frame in row if frame is not None]
    if not frames:
        raise ValueError('labelled_grid needs at least one frame.')
    height, width = frame_to_rgb(frames[0], scale).shape[:2]
    font = _font()
    label_width = max(_text_width(label, font) for label, _ in rows) + 3 * PAD
    columns = max(len(row) for _, row in rows)
    top = (LABEL_HEIGHT if title else 0) + (LABEL_HEIGHT if column_titles else 0)
    row_heights = [height + PAD if len(row) else SEPARATOR for _, row in rows]
    canvas = Image.new('RGB', (label_width + columns * (width + PAD) + PAD, top + sum(row_heights) + PAD),
                       (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, 1), title, fill=TEXT_COLOUR, font=font)
    if column_titles:
        for column, text in enumerate(column_titles):
            x = label_width + column * (width + PAD) + PAD
            draw.text((x, top - LABEL_HEIGHT + 1), text, fill=TEXT_COLOUR, font=font)
    y = top + PAD
    for (label, row), row_height in zip(rows, row_heights):
        draw.text((PAD, y + max(0, (height - LABEL_HEIGHT) // 2)), label, fill=TEXT_COLOUR, font=font)
        for column, frame in enumerate(row):
            if frame is not None:
                canvas.paste(Image.fromarray(frame_to_rgb(frame, scale)),
                             (label_width + column * (width + PAD) + PAD, y))
        y += row_height
    return canvas


def prediction_grid(inputs: np.ndarray, trues: np.ndarray, predictions: Mapping[str, np.ndarray],
                    samples: Sequence[int] = (0,), scale: int = 1) -> Image.Image:
    """The paper's Fig. 2/3 layout: per test sequence, the inputs, the ground truth and each method's prediction.

    Args:
        inputs: ``(N, T_in, C, H, W)`` input frames.
        trues: ``(N, S, C, H, W)`` true future frames.
        predictions: method name -> ``(N, S, C, H, W)`` predicted frames, on the same sequences.
        samples: which sequences to show, stacked top to bottom.
        scale: integer upscaling of every frame.
    """
    rows: list[tuple[str, Sequence[np.ndarray | None]]] = []
    for number, sample in enumerate(samples):
        if number:
            rows.append(('', []))
        rows.append((f'sequence {sample}: inputs', list(inputs[sample])))
        rows.append(('ground truth', list(trues[sample])))
        rows.extend((name, list(prediction[sample])) for name, prediction in predictions.items())
    num_in, num_out = inputs.shape[1], trues.shape[1]
    return labelled_grid(rows, scale=scale, title=f'inputs: frames 1-{num_in}; ground truth and predictions: '
                                                  f'frames {num_in + 1}-{num_in + num_out}')


def unit_range(reference: np.ndarray | Sequence[np.ndarray], *arrays: np.ndarray) -> list[np.ndarray]:
    """``arrays`` mapped linearly so that ``reference``'s range (one array, or the joint range of several)
    becomes [0, 1], when that range leaves [0, 1] (z-scored WeatherBench, TaxiBJ's flows in [-1, 1], kelvins);
    unchanged otherwise. For display only: the metrics read the data."""
    references = reference if isinstance(reference, (list, tuple)) else [reference]
    low = min(float(np.min(part)) for part in references)
    high = max(float(np.max(part)) for part in references)
    if low >= 0 and high <= 1 or high <= low:
        return list(arrays)
    return [(np.asarray(array, dtype=np.float32) - low) / (high - low) for array in arrays]


def write_image(image: Image.Image, handle, path: str) -> None:
    """Write ``image`` to the open binary ``handle`` in the format of ``path``'s extension."""
    image.save(handle, format=Image.registered_extensions()[osp.splitext(path)[1].lower()])


def save_image(image: Image.Image, path: str) -> str:
    """Write ``image`` (format by extension) atomically, creating the folder; returns ``path``."""
    return save_with(path, lambda handle: write_image(image, handle, path))


def animation_frames(inputs: np.ndarray, trues: np.ndarray | None, preds: np.ndarray, name: str,
                     samples: Sequence[int] = (0, 1, 2, 3), scale: int = 2) -> list[np.ndarray]:
    """The frames of an animation: ground truth (top) beside ``name``'s prediction (bottom), several sequences.

    The input frames play first in both rows (they are given, not predicted), then the future frames.

    Args:
        inputs: ``(N, T_in, C, H, W)``; trues, preds: ``(N, S, C, H, W)``; ``trues`` None (a future nobody
            knows) leaves out the ground-truth row.

    Returns:
        ``T_in + S`` uint8 RGB images of one size.
    """
    samples = [s for s in samples if s < len(inputs)]
    frames = []
    num_in = inputs.shape[1]
    for t in range(num_in + preds.shape[1]):
        given = t < num_in
        rows = [] if trues is None else [('truth', [inputs[s, t] if given else trues[s, t - num_in] for s in samples])]
        rows.append((name, [inputs[s, t] if given else preds[s, t - num_in] for s in samples]))
        phase = 'input' if given else 'predicted'
        frames.append(np.asarray(labelled_grid(rows, scale=scale, title=f't={t + 1} ({phase})')))
    return frames


def write_gif(frames: Sequence[np.ndarray], handle, fps: float = 4.0) -> None:
    """Write frames as a looping animated GIF to the open binary ``handle``."""
    imageio_v3.imwrite(handle, np.stack(frames), extension='.gif', duration=1000.0 / fps, loop=0)


def save_animation(frames: Sequence[np.ndarray], path: str, fps: float = 4.0) -> str:
    """Write frames as an animated GIF (looping) or, for ``.mp4``, a video (needs imageio's ffmpeg plugin);
    atomically either way."""
    if path.lower().endswith('.gif'):
        return save_with(path, lambda handle: write_gif(frames, handle, fps))
    with atomic_path(path) as tmp:       # a video writer needs a real file name
        imageio.mimsave(tmp, list(frames), fps=fps)
    return path


def displayable(frames: np.ndarray) -> np.ndarray:
    """Frames ``(..., C, H, W)`` as :func:`frame_to_rgb` draws them: C = 1 or 3 as they are, otherwise the
    first channel (e.g. TaxiBJ's inflow of its inflow/outflow pair)."""
    return frames if frames.shape[-3] in (1, 3) else frames[..., :1, :, :]


def display_scale(height: int, width: int, target: int = 96) -> int:
    """The integer upscaling that shows a frame about ``target`` pixels large (small frames are enlarged)."""
    return max(1, target // max(height, width))


def save_prediction_pictures(inputs: np.ndarray, trues: np.ndarray, preds: np.ndarray, folder: str,
                             name: str = 'prediction', grid_samples: int = 3, animation_samples: int = 4,
                             grid_file: str = 'grid.png', animation_file: str = 'animation.gif') -> dict[str, str]:
    """A grid (inputs, ground truth, prediction of the first sequences) and an animation of one method's
    predictions, in ``folder``.

    Args:
        inputs: ``(N, T_in, C, H, W)``; trues, preds: ``(N, S, C, H, W)``; in any range: data that leave
            [0, 1] are shown mapped from the range of the inputs and truth (:func:`unit_range`), predictions
            beyond it clipped.
        grid_samples, animation_samples: how many leading sequences each picture shows.

    Returns:
        ``{'grid': path, 'animation': path}``.
    """
    inputs, trues, preds = unit_range((inputs, trues), displayable(inputs), displayable(trues), displayable(preds))
    scale = display_scale(*inputs.shape[-2:])
    grid = prediction_grid(inputs, trues, {name: preds}, list(range(min(grid_samples, len(inputs)))), scale=scale)
    frames = animation_frames(inputs, trues, preds, name, tuple(range(min(animation_samples, len(inputs)))),
                              scale=2 * scale)
    return {'grid': save_image(grid, osp.join(folder, grid_file)),
            'animation': save_animation(frames, osp.join(folder, animation_file))}


def rollout_grid(inputs: np.ndarray, preds: np.ndarray, name: str = 'prediction', per_row: int | None = None
                 ) -> Image.Image:
    """One clip's inputs ``(T_in, C, H, W)`` over its predicted frames ``(S, C, H, W)``, the prediction wrapped
    into rows of ``per_row`` frames (default: ``max(T_in, 10)``), each row labelled with its frame numbers."""
    inputs, preds = displayable(inputs), displayable(preds)
    per_row = per_row or max(len(inputs), 10)
    num_in = len(inputs)
    rows = [(f'inputs 1-{num_in}', list(inputs))]
    for start in range(0, len(preds), per_row):
        chunk = list(preds[start:start + per_row])
        rows.append((f'{name} {num_in + start + 1}-{num_in + start + len(chunk)}', chunk))
    return labelled_grid(rows, scale=display_scale(*inputs.shape[-2:]))
