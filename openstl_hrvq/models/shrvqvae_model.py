"""SHRVQVAE_Model: HR-VQVAE tokenizer + ST-PixelCNN prior behind OpenSTL's model shape contract."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..modules.conv_blocks import DOWNSAMPLE_FACTOR
from .hrvqvae import HRVQVAE
from .st_pixelcnn import STPixelCNN

__all__ = ['SHRVQVAE_Model', 'DECODING_CODEWORDS']

#: How the codes of a sampled rollout become frames (see :class:`SHRVQVAE_Model`).
DECODING_CODEWORDS = ('sampled', 'expected')

class SHRVQVAE_Model(nn.Module):
    """Video predictor of S-HR-VQVAE: encode the inputs to tree indices, predict the future indices
    with the prior, decode them to frames.

    Built from a flat config dict in OpenSTL's style; keys it does not read (its arguments are its config
    keys) are ignored so a whole OpenSTL config can be passed. Defaults are the Moving-MNIST configuration
    (3 layers, M = 4, latent 16x16x4).

    Args:
        in_shape: ``(T, C, H, W)`` of the input clip; H and W divisible by 4.
        pre_seq_length: input frames (defaults to ``in_shape[0]``).
        aft_seq_length: frames to predict (defaults to ``pre_seq_length``).
        vq_*: HR-VQVAE widths and quantizer settings; prior_*: ST-PixelCNN settings. The default
            widths 48 / 24 reconstruct Moving-MNIST digits as well as 64 / 32 after equal training
            and cost 0.55x the compute, which keeps a 320-frame training step within 1.2 s on 2 cores.
        vq_value_range: ``(low, high)`` of the frames (default [0, 1]), which the tokenizer's output is clamped
            to, or None for data with no fixed range (z-scored WeatherBench): see :class:`HRVQVAE`.
        decode_order: ``'parallel'`` (layer by layer, all positions at once) or ``'raster'`` (paper).
        sample_temperature: 0 takes the argmax token (paper), > 0 samples from the prior at that temperature.
        decoding_samples: N >= 1; with N > 1 the prediction is the mean of N frame sequences decoded from N
            rollouts sampled at ``sample_temperature`` (> 0): an estimate of the conditional mean, which is
            what MSE rewards, where the argmax rollout commits to one guess per position.
        decoding_codewords: how a sampled rollout's codes become frames (sampling only). ``'sampled'``: the
            codewords drawn. ``'expected'`` (ours, beyond the paper): at every layer the codeword expected under
            the prior's distribution given the drawn parents, sum_k p(k) e_i(parent, k) -- the rollout itself
            (and what the prior reads next) is the same draw, only the rendering changes. In the latent it is a
            Rao-Blackwellised estimate of the drawn latent's mean (the same expectation, less variance), so the
            mean of N rollouts needs fewer of them for the same error.
        future_order: ``'rollout'`` (paper: each future frame from the frames predicted before it) or
            ``'masked'`` (every future frame at once from the inputs, MaskGIT-style; see
            :mod:`~openstl_hrvq.models.st_pixelcnn`).
        masked_steps: the masked order's refinements per prediction (1: each future frame from the inputs
            alone; more: the most confident tokens of each refinement become context for the next).
    """

    def __init__(self, in_shape: Sequence[int], pre_seq_length: int | None = None,
                 aft_seq_length: int | None = None, vq_layers: int = 3, vq_codebook_size: int = 4,
                 vq_latent_dim: int = 4, vq_hidden: int = 48, vq_res_hidden: int = 24, vq_res_blocks: int = 2,
                 vq_beta: float = 0.25, vq_ema: bool = True, vq_decay: float = 0.99,
                 vq_value_range: Sequence[float] | None = (0.0, 1.0), prior_hidden: int = 64,
                 prior_blocks: int = 4, prior_heads: int = 4, prior_kernel: int = 3, prior_local_blocks: int = 0,
                 decode_order: str = 'parallel', sample_temperature: float = 0.0, decoding_samples: int = 1,
                 decoding_codewords: str = 'sampled', future_order: str = 'rollout', masked_steps: int = 1,
                 **unused_config):
        super().__init__()
        if len(in_shape) != 4:
            raise ValueError(f'in_shape must be (T, C, H, W), got {tuple(in_shape)}.')
        T, C, H, W = (int(v) for v in in_shape)
        if H % DOWNSAMPLE_FACTOR or W % DOWNSAMPLE_FACTOR:
            raise ValueError(
                f'in_shape frame size {H}x{W} is not divisible by {DOWNSAMPLE_FACTOR}; resize or pad the frames.')
        self.in_shape = (T, C, H, W)
        self.pre_seq_length = int(pre_seq_length) if pre_seq_length is not None else T
        self.aft_seq_length = int(aft_seq_length) if aft_seq_length is not None else self.pre_seq_length
        self.vqvae = HRVQVAE(in_channels=C, hidden_channels=vq_hidden, res_channels=vq_res_hidden,
                             num_res_blocks=vq_res_blocks, latent_dim=vq_latent_dim, num_layers=vq_layers,
                             codebook_size=vq_codebook_size, beta=vq_beta, ema=vq_ema, decay=vq_decay,
                             value_range=vq_value_range)
        self.prior = STPixelCNN(num_layers=vq_layers, codebook_size=vq_codebook_size,
                                hidden_channels=prior_hidden, num_blocks=prior_blocks, num_heads=prior_heads,
                                kernel_size=prior_kernel, max_frames=self.pre_seq_length + self.aft_seq_length,
                                decode_order=decode_order, local_blocks=prior_local_blocks,
                                future_order=future_order)
        if not isinstance(masked_steps, int) or masked_steps < 1:
            raise ValueError(f'masked_steps must be a positive integer, got {masked_steps!r}.')
        self.masked_steps = masked_steps
        self.set_decoding(sample_temperature, decoding_samples, decoding_codewords)

    def set_decoding(self, sample_temperature: float, decoding_samples: int = 1,
                     decoding_codewords: str = 'sampled') -> None:
        """Choose how predictions are decoded (see the class docstring); :func:`decoding_keys` names the usual ones."""
        if not isinstance(decoding_samples, int) or decoding_samples < 1:
            raise ValueError(f'decoding_samples must be a positive integer, got {decoding_samples!r}.')
        if decoding_samples > 1 and sample_temperature <= 0:
            raise ValueError(f'decoding_samples={decoding_samples} averages sampled rollouts, which needs '
                             f'sample_temperature > 0 (got {sample_temperature}); use 1.0 to sample the prior.')
        if decoding_codewords not in DECODING_CODEWORDS:
            raise ValueError(f'decoding_codewords must be one of {DECODING_CODEWORDS}, got {decoding_codewords!r}.')
        if decoding_codewords == 'expected' and (sample_temperature <= 0 or self.prior.future_order != 'rollout'):
            raise ValueError("decoding_codewords='expected' renders the expected codewords of a sampled rollout: it "
                             f"needs sample_temperature > 0 and future_order='rollout' (got {sample_temperature} "
                             f"and {self.prior.future_order!r}).")
        self.sample_temperature = float(sample_temperature)
        self.decoding_samples = decoding_samples
        self.decoding_codewords = decoding_codewords

    def _check_input(self, batch_x: Tensor) -> None:
        expected = (self.pre_seq_length, *self.in_shape[1:])
        if batch_x.dim() != 5 or tuple(batch_x.shape[1:]) != expected:
            raise ValueError(
                f'Expected input frames of shape (B, {", ".join(map(str, expected))}), got '
                f'{tuple(batch_x.shape)}; set in_shape / pre_seq_length to match the data.')

    @property
    def decode_order(self) -> str:
        return self.prior.decode_order

    @property
    def decoding(self) -> str:
        """How predictions are decoded, in words (every result table names it)."""
        return describe_decoding(self.sample_temperature, self.decoding_samples, self.decoding_codewords)

    def flop_counting_module(self) -> nn.Module:
        """The module whose traced forward fvcore counts FLOPs on (see ``openstl_hrvq.model_info.count_flops``).

        Tracing raster decoding unrolls its loop over every position, layer and frame (minutes on a CPU for
        one count); :class:`TeacherForcedCost` evaluates the same layers once per token in one pass instead.
        The parallel order's prediction traces quickly and is counted as it runs.
        """
        return TeacherForcedCost(self) if self.decode_order == 'raster' else self

    def forward(self, batch_x: Tensor) -> Tensor:
        """Predict the future: ``(B, pre_seq_length, C, H, W)`` -> ``(B, aft_seq_length, C, H, W)`` in the
        tokenizer's value range."""
        return self.rollout(batch_x, self.aft_seq_length)

    def rollout(self, batch_x: Tensor, num_future: int) -> Tensor:
        """Predict any number of future frames: ``(B, pre_seq_length, C, H, W)`` -> ``(B, num_future, C, H, W)``.

        The prior was built for clips of ``pre_seq_length + aft_seq_length`` frames, so it predicts at most
        ``aft_seq_length`` frames from one context. Longer horizons continue in windows, as training saw them:
        the next up to ``aft_seq_length`` frames are predicted from the codes of the last ``pre_seq_length``
        frames, the model's own predictions included. The first window is exactly :meth:`forward`'s prediction.
        With ``decoding_samples = N > 1`` each of the N sampled rollouts continues on its own codes, and the
        frames are averaged at the end.
        """
        self._check_input(batch_x)
        if int(num_future) < 1:
            raise ValueError(f'num_future must be >= 1, got {num_future}.')
        codes = self.vqvae.encode(batch_x)                                   # (B, T_in, L, h, w)
        samples = self.decoding_samples
        expected = self.decoding_codewords == 'expected'
        # The first window's N rollouts of a clip share its context, whose trunk pass the prior runs once;
        # later windows continue from each rollout's own codes (B * N of them).
        copies = samples
        future, distributions = [], []
        remaining = int(num_future)
        while remaining > 0:
            window = min(remaining, self.aft_seq_length)
            context = codes[:, -self.pre_seq_length:]
            predicted = self.prior.predict(context, window, temperature=self.sample_temperature, samples=copies,
                                           steps=self.masked_steps, probabilities=expected)
            if expected:
                predicted, probabilities = predicted
                distributions.append(probabilities)
            codes = torch.cat([context.repeat_interleave(copies, dim=0), predicted], dim=1)
            copies = 1
            future.append(predicted)
            remaining -= window
        future = torch.cat(future, dim=1)
        if expected:
            frames = self.vqvae.decode_weighted(future, torch.cat(distributions, dim=1))
        else:
            frames = self.vqvae.decode_indices(future)
        return frames.unflatten(0, (-1, samples)).mean(dim=1) if samples > 1 else frames

    def differentiable_rollout(self, context: Tensor) -> Tensor:
        """One rollout as :meth:`forward` predicts it, with a gradient from the frames to the prior (eq. 9).

        context indices ``(B, T_in, L, h, w)`` -> frames ``(B, aft_seq_length, C, H, W)``. The prior decodes
        the future without gradient (argmax or one sample at ``sample_temperature``); one more pass of the
        prior over that rollout gives each future frame's logits under the history and the coarser layers
        it was decoded from, which are the logits of the decoding itself. The codes are decoded with
        straight-through weights: the one-hot choice forward, the softmax's gradient backward, so the
        reconstruction error trains the decoder on the paths the prior emits and the prior through the
        probabilities of its choices.
        """
        num_context = context.shape[1]
        with torch.no_grad():
            future = self.prior.predict(context, self.aft_seq_length, temperature=self.sample_temperature,
                                        steps=self.masked_steps)
        clip = torch.cat([context, future], dim=1)
        shown = None
        if self.prior.future_order == 'masked':
            # the first refinement's view (every future token hidden); with masked_steps = 1 the decoding's own
            shown = torch.zeros_like(clip[:, :, 0], dtype=torch.bool)
            shown[:, :num_context] = True
        logits = self.prior(clip, first_frame=num_context, shown=shown)         # (B, T', L, M, h, w)
        probabilities = logits.softmax(dim=3)
        chosen = nn.functional.one_hot(future, self.vqvae.codebook_size).movedim(-1, 3).to(probabilities.dtype)
        weights = chosen + probabilities - probabilities.detach()
        return self.vqvae.decode_weighted(future, weights)


def describe_decoding(sample_temperature: float = 0.0, decoding_samples: int = 1,
                      decoding_codewords: str = 'sampled') -> str:
    """The decoding selected by ``sample_temperature``, ``decoding_samples`` and ``decoding_codewords``, in words."""
    if decoding_samples > 1:
        words = f'mean of {decoding_samples} samples (T={sample_temperature:g})'
    else:
        words = 'argmax' if sample_temperature <= 0 else f'sample (T={sample_temperature:g})'
    return words + (', expected codewords' if decoding_codewords == 'expected' else '')


#: The suffix of a decoding name that renders expected codewords (``'mean8-expected'``).
EXPECTED_SUFFIX = '-expected'


def decoding_keys(spec: str) -> dict:
    """The config keys (``sample_temperature``, ``decoding_samples``, ``decoding_codewords``) of a decoding named
    ``'argmax'`` (the paper's), ``'meanN'`` (the mean of N >= 2 rollouts sampled at temperature 1) or
    ``'meanN-expected'`` (the same rollouts rendered from their expected codewords)."""
    if spec == 'argmax':
        return {'sample_temperature': 0.0, 'decoding_samples': 1, 'decoding_codewords': 'sampled'}
    codewords = 'expected' if spec.endswith(EXPECTED_SUFFIX) else 'sampled'
    samples = spec[len('mean'):len(spec) - (len(EXPECTED_SUFFIX) if codewords == 'expected' else 0)]
    if spec.startswith('mean') and samples.isdigit() and int(samples) >= 2:
        return {'sample_temperature': 1.0, 'decoding_samples': int(samples), 'decoding_codewords': codewords}
    raise ValueError(f"Unknown decoding {spec!r}: use 'argmax', 'meanN' or 'meanN-expected' with N >= 2 (e.g. "
                     f"mean8, mean8-expected).")


class TeacherForcedCost(nn.Module):
    """Prediction's FLOPs without its decoding loop: encode, one teacher-forced prior pass over the future
    frames, decode.

    Incremental decoding evaluates every layer of the prior once per token (the trunk once per frame, the head
    once per position), which is what one teacher-forced pass over the same number of tokens evaluates. The
    future tokens fed here are placeholders: FLOPs do not depend on their values.
    """

    def __init__(self, model: SHRVQVAE_Model):
        super().__init__()
        self.model = model

    def forward(self, batch_x: Tensor) -> Tensor:
        """``(B, pre_seq_length, C, H, W)`` -> ``(B, aft_seq_length, C, H, W)`` (placeholder frames)."""
        model = self.model
        context = model.vqvae.encode(batch_x)
        future = torch.zeros_like(context[:, :1]).expand(-1, model.aft_seq_length, -1, -1, -1)
        logits = model.prior(torch.cat([context, future], dim=1), first_frame=context.shape[1])
        return model.vqvae.decode_indices(logits.argmax(dim=3))
