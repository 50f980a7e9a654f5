"""Seconds per training step of S-HR-VQVAE's stages and of OpenSTL's SimVP, as their training runs them.

Shared by ``tools/benchmark_speed.py`` (the table of step and prediction costs) and ``tools/equal_time.py``
(which sizes two runs to the same wall time). A step's cost does not depend on the values of the frames or the
weights, so the clips are uniform noise and the models untrained.
"""
from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from typing import Callable

import torch

from openstl_hrvq.method_registry import constructor_keys
from openstl_hrvq.models import SHRVQVAE_Model

__all__ = ['median_seconds', 'shrvqvae_model', 'shrvqvae_training_steps', 'simvp_model', 'simvp_steps']


def median_seconds(run: Callable[[], object], repeats: int, warmup: int, device: torch.device,
                   fp16: bool = False) -> tuple[float, float]:
    """Median wall-clock and process-CPU seconds of ``run()`` over ``repeats`` calls after ``warmup``, under the
    runner's ``--fp16`` autocast when ``fp16`` (bfloat16 on a CPU, float16 on CUDA)."""
    def timed() -> tuple[float, float]:
        precision = (torch.autocast(device.type, dtype=torch.bfloat16 if device.type == 'cpu' else torch.float16)
                     if fp16 else nullcontext())
        wall, cpu = time.perf_counter(), time.process_time()
        with precision:
            run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return time.perf_counter() - wall, time.process_time() - cpu

    for _ in range(warmup):
        timed()
    walls, cpus = zip(*(timed() for _ in range(repeats)))
    return statistics.median(walls), statistics.median(cpus)


def shrvqvae_model(config: dict, device: torch.device) -> SHRVQVAE_Model:
    """S-HR-VQVAE built from a flat config (``in_shape``, ``pre_seq_length``, ``aft_seq_length`` and its keys)."""
    keys = constructor_keys(SHRVQVAE_Model)
    return SHRVQVAE_Model(**{key: value for key, value in config.items() if key in keys}).to(device)


def shrvqvae_training_steps(model: SHRVQVAE_Model, config: dict, clip: torch.Tensor
                            ) -> dict[str, Callable[[], None]]:
    """The tokenizer and prior stages' training steps on ``clip`` (B, T, C, H, W), as the method runs them:

    * ``tokenizer step``: ``vq_frames`` random frames of each clip (all of them when unset) through HR-VQVAE,
      its loss (eq. 4), backward, Adam;
    * ``prior step``: the frozen tokenizer encodes the clips without autograd, then the prior's cross-entropy
      (eq. 7) on the config's ``prior_loss_frames`` (on self-resampled histories when ``prior_resample_prob``
      > 0), backward, Adam.
    """
    vqvae, prior = model.vqvae, model.prior
    vq_optimizer = torch.optim.Adam(vqvae.parameters(), lr=3e-4)
    prior_optimizer = torch.optim.Adam(prior.parameters(), lr=3e-4)
    vq_frames = config.get('vq_frames')
    first_frame = 1 if config.get('prior_loss_frames', 'future') == 'all' else model.pre_seq_length
    resample = float(config.get('prior_resample_prob', 0.0))

    def tokenizer_step():
        vqvae.train().requires_grad_(True)
        frames = clip
        if vq_frames is not None and vq_frames < clip.shape[1]:
            chosen = torch.rand(clip.shape[:2], device=clip.device).argsort(dim=1)[:, :vq_frames]
            frames = clip[torch.arange(clip.shape[0], device=clip.device)[:, None], chosen]
        loss = vqvae(frames).loss
        vq_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        vq_optimizer.step()

    def prior_step():
        vqvae.eval().requires_grad_(False)
        prior.train()
        with torch.no_grad():
            indices = vqvae.encode(clip)
            history = None
            if resample > 0:
                history = prior.resample_history(indices, resample, config.get('prior_resample_temperature', 1.0),
                                                 config.get('prior_resample_rounds', 1))
        loss = prior.loss(indices, first_frame, history=history)
        prior_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        prior_optimizer.step()

    return {'tokenizer step': tokenizer_step, 'prior step': prior_step}


def simvp_model(config: dict, device: torch.device):
    """OpenSTL's ``SimVP_Model`` built from a flat config (``in_shape`` and its model keys, e.g. ``model_type``,
    ``hid_S``, ``hid_T``, ``N_S``, ``N_T``), or None when OpenSTL is not importable."""
    try:
        from openstl.models import SimVP_Model
    except ImportError:
        return None
    keys = constructor_keys(SimVP_Model)
    return SimVP_Model(**{key: value for key, value in config.items() if key in keys}).to(device)


def simvp_steps(simvp, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Callable[[], None]]:
    """SimVP's training step as OpenSTL runs it (MSE of the predicted frames, backward, Adam) and its prediction,
    on one batch: ``inputs`` (B, T_in, C, H, W), ``targets`` (B, T_out, C, H, W)."""
    optimizer = torch.optim.Adam(simvp.parameters(), lr=1e-3)

    def training_step():
        simvp.train()
        loss = torch.nn.functional.mse_loss(simvp(inputs).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def prediction():
        simvp.eval()
        with torch.no_grad():
            simvp(inputs)

    return {'training step': training_step, 'prediction': prediction}
