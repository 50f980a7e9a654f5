"""Robustness to corrupted inputs (S-HR-VQVAE paper Fig. 6): reconstruction and prediction quality.

Corruptions act on every input frame ``(N, C, H, W)``:

* ``gaussian_blur`` at standard deviation ``level`` pixels;
* ``fragment_blur``: a randomly placed square covering ``level`` of the frame's area is blurred
  (sigma :data:`FRAGMENT_SIGMA`), the rest is untouched;
* ``noise``: additive white Gaussian noise at a signal-to-noise ratio of ``level`` dB per frame,
  ``10 log10(mean(x^2) / mean(n^2))``. The noise is rescaled so every frame has exactly that SNR, and it is
  not clipped to [0, 1] (clipping would raise the SNR of dark frames).

Reconstruction = HR-VQVAE(corrupted input) against the clean input; prediction = the full model fed the
corrupted inputs against the true future.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from openstl_hrvq.files import save_figure  # noqa: E402
from openstl_hrvq.metrics import metric  # noqa: E402
from openstl_hrvq.visualization import labelled_grid  # noqa: E402

FRAGMENT_SIGMA = 2.0
CORRUPTIONS = ('gaussian_blur', 'fragment_blur', 'noise')
#: (corruption, level): the clean inputs, then three strengths of each corruption.
DEFAULT_CONDITIONS = (('clean', None), ('gaussian_blur', 0.5), ('gaussian_blur', 1.0), ('gaussian_blur', 2.0),
                      ('fragment_blur', 0.25), ('fragment_blur', 0.5), ('fragment_blur', 1.0),
                      ('noise', 20.0), ('noise', 10.0), ('noise', 5.0), ('noise', 0.0))
LEVEL_UNITS = {'gaussian_blur': 'sigma (px)', 'fragment_blur': 'blurred area fraction', 'noise': 'SNR (dB)'}


def condition_name(corruption: str, level) -> str:
    if corruption == 'clean':
        return 'clean'
    if corruption == 'gaussian_blur':
        return f'blur sigma {level:g}'
    if corruption == 'fragment_blur':
        return f'fragment {100 * level:.0f}%'
    return f'SNR {level:g} dB'


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders: ``(N, C, H, W)`` -> same; radius ``ceil(3 sigma)``."""
    if sigma <= 0:
        return frames.clone()
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=frames.dtype, device=frames.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = frames.shape
    x = F.pad(frames.reshape(n * c, 1, h, w), (radius, radius, radius, radius), mode='reflect')
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)


def fragment_blur(frames: torch.Tensor, fraction: float, generator: torch.Generator,
                  sigma: float = FRAGMENT_SIGMA) -> torch.Tensor:
    """Blur one random square covering ``fraction`` of each frame's area: ``(N, C, H, W)`` -> same."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f'fragment_blur needs an area fraction in (0, 1], got {fraction}.')
    n, _, h, w = frames.shape
    side_h, side_w = max(1, round(h * math.sqrt(fraction))), max(1, round(w * math.sqrt(fraction)))
    blurred = gaussian_blur(frames, sigma)
    top = torch.randint(0, h - side_h + 1, (n,), generator=generator).tolist()
    left = torch.randint(0, w - side_w + 1, (n,), generator=generator).tolist()
    mask = torch.zeros(n, 1, h, w, dtype=torch.bool)
    for index, (y, x) in enumerate(zip(top, left)):
        mask[index, :, y:y + side_h, x:x + side_w] = True
    return torch.where(mask.to(frames.device), blurred, frames)


def add_noise(frames: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """Add white Gaussian noise with exactly ``snr_db`` per frame: ``(N, C, H, W)`` -> same (not clipped)."""
    noise = torch.randn(frames.shape, generator=generator, dtype=torch.float64).to(frames.device)
    signal_power = frames.double().square().mean(dim=(1, 2, 3), keepdim=True)
    noise_power = noise.square().mean(dim=(1, 2, 3), keepdim=True)
    noise = noise * torch.sqrt(signal_power / (10 ** (snr_db / 10)) / noise_power)
    return (frames.double() + noise).to(frames.dtype)


def corrupt(frames: torch.Tensor, corruption: str, level, generator: torch.Generator) -> torch.Tensor:
    """Apply one corruption to frames ``(..., C, H, W)`` (leading dims folded)."""
    shape = frames.shape
    flat = frames.reshape(-1, *shape[-3:])
    if corruption == 'clean':
        out = flat.clone()
    elif corruption == 'gaussian_blur':
        out = gaussian_blur(flat, float(level))
    elif corruption == 'fragment_blur':
        out = fragment_blur(flat, float(level), generator)
    elif corruption == 'noise':
        out = add_noise(flat, float(level), generator)
    else:
        raise ValueError(f"Unknown corruption '{corruption}': choose from {('clean',) + CORRUPTIONS}.")
    return out.reshape(shape)


def pooled_snr_db(clean: torch.Tensor, corrupted: torch.Tensor) -> float:
    """SNR in dB of all frames together, ``10 log10(sum x^2 / sum (y - x)^2)``; finite unless nothing changed.

    Equal to every frame's SNR when all frames have the same one (the noise corruption).
    """
    error = (corrupted.double() - clean.double()).square().sum()
    return float('inf') if error == 0 else float(10 * torch.log10(clean.double().square().sum() / error))


@torch.no_grad()
def _batched(fn, tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(tensor[start:start + batch_size]) for start in range(0, len(tensor), batch_size)])


def evaluate_robustness(model, inputs: np.ndarray, trues: np.ndarray, conditions=DEFAULT_CONDITIONS,
                        predict_sequences: int | None = None, batch_size: int = 16, seed: int = 0,
                        device: str = 'cpu') -> dict:
    """Reconstruction and prediction quality of ``model`` (an ``SHRVQVAE_Model``) under each condition.

    Args:
        inputs: ``(N, T_in, C, H, W)`` clean inputs; trues: ``(N, S, C, H, W)`` true futures.
        conditions: ``(corruption, level)`` pairs, ``('clean', None)`` for none.
        predict_sequences: predict from only the first this many sequences (prediction is the slow part).

    Returns:
        ``{'rows': [...], 'examples': {...}}``: a row per condition with ``corruption``, ``level``,
        ``condition``, ``input_snr_db`` (measured over all corrupted frames; None when nothing changed),
        ``recon_mse``, ``recon_ssim``, ``pred_mse``, ``pred_ssim`` (MSE: per-frame sums); ``examples`` holds,
        per condition, the first sequence's last corrupted input frame, its reconstruction and the first
        predicted frame, for the figure.
    """
    generator = torch.Generator().manual_seed(seed)
    clean = torch.as_tensor(inputs, dtype=torch.float32)
    num_predict = len(inputs) if predict_sequences is None else min(predict_sequences, len(inputs))
    rows, examples = [], {}
    for corruption, level in tqdm(conditions, desc='robustness conditions'):
        corrupted = corrupt(clean, corruption, level, generator)
        flat_clean, flat_corrupted = clean.flatten(0, 1), corrupted.flatten(0, 1)
        recon = _batched(lambda x: model.vqvae(x.to(device)).reconstruction.cpu(), corrupted, batch_size)
        preds = _batched(lambda x: model(x.to(device)).cpu(), corrupted[:num_predict], batch_size)
        recon_scores, _ = metric(recon.numpy(), inputs, metrics=['mse', 'ssim'], return_log=False)
        pred_scores, _ = metric(preds.numpy(), trues[:num_predict], metrics=['mse', 'ssim'], return_log=False)
        measured = pooled_snr_db(flat_clean, flat_corrupted)
        measured = None if math.isinf(measured) else measured
        name = condition_name(corruption, level)
        rows.append({'corruption': corruption, 'level': level, 'condition': name, 'input_snr_db': measured,
                     'recon_mse': recon_scores['mse'], 'recon_ssim': recon_scores['ssim'],
                     'pred_mse': pred_scores['mse'], 'pred_ssim': pred_scores['ssim'],
                     'recon_sequences': len(inputs), 'pred_sequences': num_predict})
        examples[name] = {'input': corrupted[0, -1].numpy(), 'reconstruction': recon[0, -1].numpy(),
                          'prediction': preds[0, 0].numpy()}
    return {'rows': rows, 'examples': examples}


def robustness_markdown(rows: list[dict]) -> str:
    lines = ['| Condition | Input SNR (dB) | Recon MSE ↓ | Recon SSIM ↑ | Pred MSE ↓ | Pred SSIM ↑ |',
             '|---|---:|---:|---:|---:|---:|']
    for row in rows:
        snr = '-' if row['input_snr_db'] is None else f"{row['input_snr_db']:.1f}"
        lines.append(f"| {row['condition']} | {snr} | {row['recon_mse']:.2f} | {row['recon_ssim']:.4f} | "
                     f"{row['pred_mse']:.2f} | {row['pred_ssim']:.4f} |")
    return '\n'.join(lines)


def robustness_figure(rows: list[dict], path: str) -> str:
    """MSE of reconstruction and prediction against corruption strength, one panel per corruption."""
    clean = next((row for row in rows if row['corruption'] == 'clean'), None)
    kinds = [kind for kind in CORRUPTIONS if any(row['corruption'] == kind for row in rows)]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4 * max(1, len(kinds)), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        selected = sorted((row for row in rows if row['corruption'] == kind), key=lambda row: row['level'])
        levels = [row['level'] for row in selected]
        for key, label, colour in (('recon_mse', 'reconstruction', 'tab:blue'), ('pred_mse', 'prediction', 'tab:red')):
            ax.plot(levels, [row[key] for row in selected], marker='o', color=colour, label=label)
            if clean is not None:
                ax.axhline(clean[key], color=colour, linestyle='--', linewidth=0.8)
        if kind == 'noise':
            ax.invert_xaxis()  # stronger corruption to the right, as for the blurs
        ax.set_xlabel(LEVEL_UNITS[kind])
        ax.set_ylabel('MSE per frame')
        ax.set_title(kind.replace('_', ' '))
        ax.legend(fontsize=7)
    fig.suptitle('Robustness to corrupted inputs (dashed: clean inputs)', fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def examples_figure(examples: dict, scale: int = 2):
    """Columns: conditions; rows: corrupted last input frame, its reconstruction, the first predicted frame."""
    names = list(examples)
    rows = [(label, [examples[name][key] for name in names])
            for label, key in (('input', 'input'), ('reconstruction', 'reconstruction'),
                               ('prediction t+1', 'prediction'))]
    return labelled_grid(rows, scale=scale, column_titles=names)
