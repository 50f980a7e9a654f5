"""Video-prediction metrics with the published OpenSTL leaderboard's definitions, vectorised.

Every metric is first computed per frame and then averaged over samples and frames:

- ``mse`` / ``mae``: sum over C x H x W of the squared / absolute error of one frame (divided by
  C*H*W when ``spatial_norm``), on de-normalised, *unclipped* predictions. ``rmse`` is the square
  root of the averaged ``mse`` (not the mean of per-frame roots), as OpenSTL reports it.
- Predictions are then clipped to ``clip_range``; ground truth is left as it is.
- ``psnr``: ``-10 log10(mean squared error of the frame)`` on [0, 1] data (``inf`` for a perfect frame).
- ``snr``: ``10 log10(mean(true^2) / mean((true - pred)^2))`` per frame.
- ``ssim``: scikit-image's ``structural_similarity(channel_axis=-1)`` per frame: 7x7 uniform window,
  sample covariance, K1 = 0.01, K2 = 0.03, per-channel means averaged. ``data_range`` defaults to
  2.0 (:data:`SSIM_DATA_RANGE_PUBLISHED`): scikit-image <= 0.19, which produced the published
  numbers, took the range of a float dtype, [-1, 1]. ``ssim_data_range=1.0``
  (:data:`SSIM_DATA_RANGE_PIXEL`) gives SSIM for the actual [0, 1] pixel range; it is stricter
  (lower) and not comparable with the leaderboard.
- ``lpips``: LPIPS v0.1 with the AlexNet trunk on inputs mapped to [-1, 1]. It needs torchvision's
  ImageNet AlexNet weights (:data:`ALEXNET_WEIGHTS_FILE`), which are never downloaded here; without
  them ``lpips`` is reported as NaN with one logged line saying where to put the file.

Per-frame work runs on chunks of frames in float64 (the SSIM variance terms lose digits in float32)
on the input's device: cache-sized chunks on several threads on a CPU, large chunks on a GPU.
``tools/benchmark_metrics.py`` times it against the leaderboard's per-frame loop.
"""
from __future__ import annotations

import functools
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

METRIC_NAMES = ('mae', 'mse', 'rmse', 'ssim', 'psnr', 'snr', 'lpips')
CLIPPED_METRICS = ('ssim', 'psnr', 'snr', 'lpips')
SSIM_DATA_RANGE_PUBLISHED = 2.0
SSIM_DATA_RANGE_PIXEL = 1.0
SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
ALEXNET_WEIGHTS_FILE = 'alexnet-owt-7be5be79.pth'
ALEXNET_WEIGHTS_ENV = 'OPENSTL_HRVQ_ALEXNET_WEIGHTS'
# Values per chunk of frames: on a CPU a chunk's float64 temporaries must stay in cache (batching all
# frames at once is slower than scikit-image's per-frame loop); on a GPU big chunks keep it busy.
CPU_VALUES_PER_CHUNK = 1 << 16
GPU_VALUES_PER_CHUNK = 1 << 24
LPIPS_BATCH = 256

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.from_numpy(np.ascontiguousarray(x))


def _check_videos(pred: torch.Tensor, true: torch.Tensor) -> None:
    if pred.ndim != 5 or pred.shape != true.shape:
        raise ValueError(f'pred and true must both be (B, T, C, H, W) videos of one shape, got '
                         f'{tuple(pred.shape)} and {tuple(true.shape)}.')


def _frame_stat(value, device: torch.device) -> torch.Tensor | None:
    """Mean/std as a float64 tensor that broadcasts against (N, C, H, W) frames."""
    if value is None:
        return None
    stat = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value,
                           dtype=torch.float64, device=device)
    while stat.ndim > 3 and stat.shape[0] == 1:
        stat = stat[0]
    if stat.ndim > 3:
        raise ValueError(f'mean/std of shape {tuple(stat.shape)} must broadcast to one (C, H, W) frame.')
    return stat


def _line_sums(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Sums of ``size`` consecutive values along ``dim`` (length n -> n - size + 1).

    Built from power-of-two partial sums (7 = 1 + 2 + 4): four additions per value instead of six,
    each sum still of the same few float64 terms as scipy's running sums.
    """
    out_len = x.shape[dim] - size + 1
    total, owned = None, False
    block, width, offset, remaining = x, 1, 0, size
    while remaining:
        if remaining & 1:
            piece = block.narrow(dim, offset, out_len)
            if total is None:
                total = piece
            elif owned:
                total.add_(piece)
            else:
                total, owned = total + piece, True
            offset += width
        remaining >>= 1
        if remaining:
            length = block.shape[dim] - width
            block = block.narrow(dim, 0, length) + block.narrow(dim, width, length)
            width *= 2
    return total if owned else total.clone()


def _window_sums(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sum over every full ``size`` x ``size`` window: (..., H, W) -> (..., H-size+1, W-size+1).

    scikit-image filters with reflected borders and then crops (size-1)/2 pixels from every side,
    which leaves exactly the windows that lie fully inside the frame.
    """
    return _line_sums(_line_sums(x, size, -1), size, -2)


def ssim_per_frame(pred: ArrayLike, true: ArrayLike, data_range: float = SSIM_DATA_RANGE_PUBLISHED) -> torch.Tensor:
    """SSIM of each frame, equal to scikit-image's ``structural_similarity`` to float64 rounding.

    Args:
        pred, true: ``(N, C, H, W)`` frames (H, W >= 7); any float dtype, computed in float64.
        data_range: dynamic range L in C1 = (K1 L)^2, C2 = (K2 L)^2; 2.0 reproduces the leaderboard.

    Returns:
        ``(N,)`` float64: mean SSIM over the valid 7x7 windows, averaged over channels.
    """
    x = _as_tensor(pred).to(torch.float64)
    y = _as_tensor(true).to(torch.float64)
    n, c, h, w = x.shape
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f'SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {h}x{w}.')
    # Only x^2 + y^2 enters the formula, so four window sums suffice.
    maps = torch.empty((4, n, c, h, w), dtype=torch.float64, device=x.device)
    maps[0], maps[1] = x, y
    torch.mul(x, x, out=maps[2]).addcmul_(y, y)
    torch.mul(x, y, out=maps[3])
    sum_x, sum_y, sum_sq, sum_xy = _window_sums(maps, SSIM_WINDOW)
    # skimage's formula on window means, multiplied through by area^2 so it works on the sums:
    # mu = S/A, var = A/(A-1) (S_xx/A - mu^2), and every factor of the ratio scales by A^2.
    area = SSIM_WINDOW ** 2
    sample_cov = area / (area - 1)
    c1, c2 = (SSIM_K1 * data_range * area) ** 2, (SSIM_K2 * data_range * area) ** 2
    product = sum_x * sum_y
    squares = sum_x.square_().add_(sum_y.square_())
    numerator = (2 * product + c1).mul_(sum_xy.mul_(area).sub_(product).mul_(2 * sample_cov).add_(c2))
    denominator = (squares + c1).mul_(sum_sq.mul_(area).sub_(squares).mul_(sample_cov).add_(c2))
    return numerator.div_(denominator).mean(dim=(-2, -1)).mean(dim=1)


def psnr_per_frame(pred: ArrayLike, true: ArrayLike) -> torch.Tensor:
    """PSNR of each frame on [0, 1] data: (N, C, H, W) -> (N,) float64; ``inf`` where the frame is exact.

    The difference is taken in float32, as the leaderboard code does.
    """
    diff = (_as_tensor(pred).to(torch.float32) - _as_tensor(true).to(torch.float32)).to(torch.float64)
    return -10.0 * torch.log10(diff.square().mean(dim=(1, 2, 3)))


def snr_per_frame(pred: ArrayLike, true: ArrayLike) -> torch.Tensor:
    """SNR of each frame in dB: (N, C, H, W) -> (N,) float64."""
    x = _as_tensor(pred).to(torch.float64)
    y = _as_tensor(true).to(torch.float64)
    return 10.0 * torch.log10(y.square().mean(dim=(1, 2, 3)) / (y - x).square().mean(dim=(1, 2, 3)))


def find_alexnet_weights(path: str | os.PathLike | None = None) -> Path | None:
    """Locate torchvision's ImageNet AlexNet weights without downloading anything.

    Looks at ``path`` (the file, or a folder holding it), then ``$OPENSTL_HRVQ_ALEXNET_WEIGHTS`` (same),
    then torch hub's cache ``torch.hub.get_dir()/checkpoints/``. Returns the file, or None.
    """
    candidates = [p for p in (path, os.environ.get(ALEXNET_WEIGHTS_ENV)) if p]
    candidates.append(Path(torch.hub.get_dir()) / 'checkpoints')
    for candidate in map(Path, candidates):
        file = candidate / ALEXNET_WEIGHTS_FILE if candidate.is_dir() else candidate
        if file.is_file():
            return file
    return None


def _unavailable_lpips_message(path: str | os.PathLike | None) -> str:
    hub = Path(torch.hub.get_dir()) / 'checkpoints'
    looked = f'{path}, ' if path else ''
    return (f'LPIPS unavailable (reported as NaN): torchvision AlexNet weights {ALEXNET_WEIGHTS_FILE} not found '
            f'(looked in {looked}${ALEXNET_WEIGHTS_ENV}, {hub}); copy the file to {hub}/ or pass its path '
            f'as lpips_weights= or in ${ALEXNET_WEIGHTS_ENV}.')


@functools.lru_cache(maxsize=4)
def _lpips_network(weights: Path, device: str):
    """LPIPS(alex, v0.1) with its trunk loaded from ``weights`` and its linear heads from the lpips package."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torchvision's deprecation notice for pretrained=False
        network = lpips.LPIPS(net='alex', version='0.1', pretrained=True, pnet_rand=True, verbose=False)
    trunk_state = torch.load(weights, map_location='cpu', weights_only=True)
    # lpips splits AlexNet's `features` into slices that keep the original layer indices as names.
    renamed = {f'{slice_name}.{layer_name}.{param}': trunk_state[f'features.{layer_name}.{param}']
               for slice_name, block in network.net.named_children()
               for layer_name, layer in block.named_children()
               for param, _ in layer.named_parameters()}
    network.net.load_state_dict(renamed, strict=True)
    return network.eval().to(device)


def load_lpips(weights: str | os.PathLike | None = None, device: torch.device | str = 'cpu'):
    """Return the offline LPIPS(alex) network on ``device``, or None (after one log line) when unavailable."""
    try:
        import lpips  # noqa: F401  (needs torchvision)
    except ImportError as error:
        logger.warning('LPIPS unavailable (reported as NaN): %s; install it with `pip install lpips torchvision`.',
                       error)
        return None
    file = find_alexnet_weights(weights)
    if file is None:
        logger.warning(_unavailable_lpips_message(weights))
        return None
    try:
        return _lpips_network(file.resolve(), str(device))
    except (KeyError, RuntimeError, OSError) as error:
        logger.warning('LPIPS unavailable (reported as NaN): %s is not a torchvision AlexNet state dict (%s).',
                       file, error)
        return None


@torch.no_grad()
def lpips_per_frame(pred: ArrayLike, true: ArrayLike, network, batch_size: int = LPIPS_BATCH) -> torch.Tensor:
    """LPIPS distance of each frame: (N, C, H, W) in [0, 1], C in {1, 3} -> (N,) float64.

    One-channel frames broadcast against AlexNet's three input channels inside lpips' scaling layer,
    which is what the leaderboard code did implicitly.
    """
    x, y = _as_tensor(pred), _as_tensor(true)
    device = next(network.parameters()).device
    scores = []
    for start in range(0, x.shape[0], batch_size):
        a = x[start:start + batch_size].to(device=device, dtype=torch.float32) * 2 - 1
        b = y[start:start + batch_size].to(device=device, dtype=torch.float32) * 2 - 1
        scores.append(network(a, b).reshape(-1).to(torch.float64))
    return torch.cat(scores).to(x.device)


def _frames_per_chunk(device: torch.device, values_per_frame: int) -> int:
    budget = CPU_VALUES_PER_CHUNK if device.type == 'cpu' else GPU_VALUES_PER_CHUNK
    return max(1, budget // values_per_frame)


def _score_chunk(p: torch.Tensor, y: torch.Tensor, names: Sequence[str], mean_t, std_t, clip_range,
                 ssim_data_range: float) -> dict[str, torch.Tensor]:
    """Every metric but LPIPS on one chunk of (n, C, H, W) frames."""
    p, y = p.to(torch.float64), y.to(torch.float64)
    if mean_t is not None and std_t is not None:
        p, y = p * std_t + mean_t, y * std_t + mean_t
    scores = {}
    if 'mse' in names:
        scores['mse'] = (p - y).square().sum(dim=(2, 3))
    if 'mae' in names:
        scores['mae'] = (p - y).abs().sum(dim=(2, 3))
    if clip_range is not None:
        p = p.clamp(clip_range[0], clip_range[1])
    if 'ssim' in names:
        scores['ssim'] = ssim_per_frame(p, y, ssim_data_range)
    if 'psnr' in names:
        scores['psnr'] = psnr_per_frame(p, y)
    if 'snr' in names:
        scores['snr'] = snr_per_frame(p, y)
    return scores


def _frame_columns(pred: ArrayLike, true: ArrayLike, mean, std, names: Sequence[str],
                   clip_range: Sequence[float] | None, ssim_data_range: float,
                   lpips_weights: str | os.PathLike | None, frames_per_chunk: int | None) -> dict[str, np.ndarray]:
    """The shared pipeline: de-normalise, per-channel error sums, clip, per-frame scores.

    ``names`` holds ``mse``/``mae`` (returned as per-channel sums, float64 ``(B, T, C)``) and any of
    :data:`CLIPPED_METRICS` (float64 ``(B, T)``). On a CPU the chunks run on
    ``torch.get_num_threads()`` Python threads (torch releases the GIL inside its kernels).
    """
    p_all, t_all = _as_tensor(pred), _as_tensor(true)
    _check_videos(p_all, t_all)
    b, t, c, h, w = p_all.shape
    p_all, t_all = p_all.reshape(b * t, c, h, w), t_all.reshape(b * t, c, h, w)
    device = p_all.device
    mean_t, std_t = _frame_stat(mean, device), _frame_stat(std, device)
    chunk = frames_per_chunk or _frames_per_chunk(device, c * h * w)

    def score(start: int) -> dict[str, torch.Tensor]:
        return _score_chunk(p_all[start:start + chunk], t_all[start:start + chunk], names, mean_t, std_t,
                            clip_range, ssim_data_range)

    starts = range(0, b * t, chunk)
    workers = torch.get_num_threads() if device.type == 'cpu' else 1
    if workers > 1 and len(starts) > 1:
        # One chunk per thread, each op single-threaded: intra-op parallelism on cache-sized tensors
        # costs more in fork/join waits than it gains, and far more on a busy machine.
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(score, starts))
        finally:
            torch.set_num_threads(workers)
    else:
        parts = [score(start) for start in starts]
    columns = {name: torch.cat([part[name] for part in parts]) for name in names if name != 'lpips'}
    if 'lpips' in names:
        columns['lpips'] = _lpips_column(p_all, t_all, mean_t, std_t, clip_range, lpips_weights)
    return {name: values.cpu().numpy().reshape(b, t, *values.shape[1:]) for name, values in columns.items()}


def _lpips_column(p_all: torch.Tensor, t_all: torch.Tensor, mean_t, std_t, clip_range,
                  lpips_weights: str | os.PathLike | None) -> torch.Tensor:
    """LPIPS of (N, C, H, W) frames after de-normalising and clipping; NaN when unavailable."""
    if p_all.shape[1] not in (1, 3):
        logger.warning('LPIPS unavailable (reported as NaN): AlexNet takes 1- or 3-channel frames, got %d channels.',
                       p_all.shape[1])
        network = None
    else:
        network = load_lpips(lpips_weights, p_all.device)
    if network is None:
        return torch.full((p_all.shape[0],), float('nan'), dtype=torch.float64)
    scores = []
    for start in range(0, p_all.shape[0], LPIPS_BATCH):
        p = p_all[start:start + LPIPS_BATCH].to(torch.float64)
        y = t_all[start:start + LPIPS_BATCH].to(torch.float64)
        if mean_t is not None and std_t is not None:
            p, y = p * std_t + mean_t, y * std_t + mean_t
        if clip_range is not None:
            p = p.clamp(clip_range[0], clip_range[1])
        scores.append(lpips_per_frame(p, y, network))
    return torch.cat(scores)


def _check_metric_names(metrics: Sequence[str]) -> None:
    unknown = set(metrics) - set(METRIC_NAMES)
    if unknown:
        raise ValueError(f'Unknown metrics {sorted(unknown)}; choose from {list(METRIC_NAMES)}.')


def per_frame_metrics(pred: ArrayLike, true: ArrayLike, mean=None, std=None,
                      metrics: Sequence[str] = ('mae', 'mse'), clip_range: Sequence[float] | None = (0, 1),
                      spatial_norm: bool = False, ssim_data_range: float = SSIM_DATA_RANGE_PUBLISHED,
                      lpips_weights: str | os.PathLike | None = None,
                      frames_per_chunk: int | None = None) -> dict[str, np.ndarray]:
    """Per-frame values of ``metrics`` through the same pipeline as :func:`metric`.

    Args:
        pred, true: ``(B, T, C, H, W)`` numpy arrays or tensors (normalised when ``mean``/``std`` given).
        mean, std: scalars or arrays broadcasting to one ``(C, H, W)`` frame, or None.
        metrics: names from :data:`METRIC_NAMES` except ``rmse``, which only exists as an aggregate.
        frames_per_chunk: frames scored together (None: sized to the CPU cache or the GPU).

    Returns:
        name -> float64 ``(B, T)`` array. ``mse``/``mae`` are sums over C x H x W (means when
        ``spatial_norm``); ``lpips`` is all-NaN when the network is unavailable.
    """
    _check_metric_names(metrics)
    if 'rmse' in metrics:
        raise ValueError('rmse is the root of the mean per-frame mse; ask for mse per frame instead.')
    frames = _frame_columns(pred, true, mean, std, metrics, clip_range, ssim_data_range, lpips_weights,
                            frames_per_chunk)
    values_per_frame = int(np.prod(_as_tensor(pred).shape[2:])) if spatial_norm else 1
    for name in ('mse', 'mae'):
        if name in frames:
            frames[name] = frames[name].sum(axis=-1) / values_per_frame
    return frames


def metric(pred: ArrayLike, true: ArrayLike, mean=None, std=None, metrics: Sequence[str] = ('mae', 'mse'),
           clip_range: Sequence[float] | None = (0, 1), channel_names: Sequence[str] | None = None,
           spatial_norm: bool = False, return_log: bool = True,
           ssim_data_range: float = SSIM_DATA_RANGE_PUBLISHED, lpips_weights: str | os.PathLike | None = None,
           per_frame: bool = False, frames_per_chunk: int | None = None):
    """Score predicted videos as OpenSTL 1.0.0's ``openstl.core.metric`` does, but vectorised.

    Args:
        pred, true: ``(B, T, C, H, W)`` numpy arrays or tensors (any device).
        mean, std: de-normalisation (``x * std + mean``) applied to both first, or None.
        metrics: names from :data:`METRIC_NAMES`.
        clip_range: predictions are clipped to it before ssim/psnr/snr/lpips (None: no clipping).
        channel_names: with two or more names, the channels are split into that many equal groups;
            mse/mae/rmse are reported per group (``mse_<name>``) and overall as the mean over groups.
        spatial_norm: divide mse/mae/rmse by the number of values in a frame (of a group).
        return_log: also build OpenSTL's ``"name:value, ..."`` string.
        ssim_data_range: 2.0 = leaderboard (:data:`SSIM_DATA_RANGE_PUBLISHED`), 1.0 = pixel range.
        lpips_weights: AlexNet weights file or folder (see :func:`find_alexnet_weights`).
        per_frame: also return the per-frame ``(B, T)`` arrays as ``eval_res['per_frame']``.
        frames_per_chunk: frames scored together (None: sized to the CPU cache or the GPU).

    Returns:
        ``(eval_res, eval_log)``: dict name -> float (in OpenSTL's order), and the log string
        ('' unless ``return_log``).
    """
    _check_metric_names(metrics)
    shape = tuple(_as_tensor(pred).shape)
    _check_videos(_as_tensor(pred), _as_tensor(true))
    groups = [str(name) for name in channel_names] if channel_names is not None and len(channel_names) > 1 else None
    if groups is not None and shape[2] % len(groups) != 0:
        raise ValueError(f'{shape[2]} channels cannot be split into {len(groups)} channel_names groups.')
    error_names = [name for name in ('mse', 'mae') if name in metrics or (name == 'mse' and 'rmse' in metrics)]
    frames = _frame_columns(pred, true, mean, std, error_names + [m for m in metrics if m in CLIPPED_METRICS],
                            clip_range, ssim_data_range, lpips_weights, frames_per_chunk)

    group_width = shape[2] // len(groups) if groups else shape[2]
    values_per_frame = group_width * shape[3] * shape[4] if spatial_norm else 1
    num_groups = len(groups) if groups else 1
    mean_error = {}  # name -> per group, the mean over frames of the group's per-frame sum
    for name in error_names:
        group_sums = frames[name].reshape(*frames[name].shape[:2], num_groups, group_width).sum(axis=-1)
        mean_error[name] = [float(value) / values_per_frame for value in group_sums.mean(axis=(0, 1))]
    mean_error['rmse'] = [float(np.sqrt(value)) for value in mean_error.get('mse', [])]

    eval_res: dict = {}
    for name in ('mse', 'mae', 'rmse'):
        if name not in metrics:
            continue
        if groups is not None:
            eval_res.update({f'{name}_{label}': value for label, value in zip(groups, mean_error[name])})
        eval_res[name] = float(np.mean(mean_error[name]))
    for name in CLIPPED_METRICS:
        if name in metrics:
            eval_res[name] = float(frames[name].mean())

    eval_log = ', '.join(f'{name}:{value}' for name, value in eval_res.items()) if return_log else ''
    if per_frame:
        values_per_full_frame = int(np.prod(shape[2:])) if spatial_norm else 1
        eval_res['per_frame'] = {name: (values.sum(axis=-1) / values_per_full_frame if name in error_names else values)
                                 for name, values in frames.items()}
    return eval_res, eval_log


def frame_sum_mse(pred: torch.Tensor, true: torch.Tensor, std=None) -> torch.Tensor:
    """``mse`` in the leaderboard's units, on tensors and differentiable: what ``val_loss`` reports.

    The squared error of the de-normalised frames summed over C x H x W, averaged over samples and frames
    (the mean of the de-normalisation cancels). pred, true: ``(B, T, C, H, W)``; std: a scalar or an array
    broadcasting to one ``(C, H, W)`` frame, or None. Returns a scalar tensor.
    """
    error = pred - true
    if std is not None:
        error = error * torch.as_tensor(np.asarray(std), dtype=error.dtype, device=error.device)
    return error.pow(2).flatten(2).sum(dim=-1).mean()
