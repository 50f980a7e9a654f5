"""Parameter counts, FLOPs (fvcore, as OpenSTL reports them) and inference throughput of a model.

One protocol for every method, so a comparison table compares like with like: FLOPs of one forward pass on
one sample of shape (1, T_in, C, H, W), throughput in sequences per second on the current device. It knows
models, not methods: whether a method's model takes the input frames alone is its caller's to say (the
registration for the plugin's methods, :func:`openstl_hrvq.openstl_bridge.model_takes_frames`).
"""
from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger(__name__)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def dummy_input(in_shape, pre_seq_length: int, batch: int = 1, device='cpu') -> torch.Tensor:
    """A (batch, T_in, C, H, W) tensor of ones, the input OpenSTL counts FLOPs on."""
    _, channels, height, width = in_shape
    return torch.ones(batch, pre_seq_length, channels, height, width, device=device)


def count_flops(model: torch.nn.Module, sample: torch.Tensor) -> tuple[int, str]:
    """Total FLOPs of ``model(sample)`` (fvcore's count: one multiply-add = one flop) and fvcore's table.

    A model with a ``flop_counting_module()`` is counted on the module it returns (an equal-cost stand-in for a
    forward pass that tracing would unroll, such as S-HR-VQVAE's raster decoding).
    """
    # Imported here, after the console's filters: fvcore warns about torch.jit.script when it is imported.
    from openstl_hrvq.api.console import ignore_dependency_warnings
    ignore_dependency_warnings()
    from fvcore.nn import FlopCountAnalysis, flop_count_table

    was_training = model.training
    model.eval()
    counted = model.flop_counting_module() if hasattr(model, 'flop_counting_module') else model
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(counted, sample)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total = int(analysis.total())
            table = flop_count_table(analysis, max_depth=2)
    finally:
        model.train(was_training)
    return total, table


@torch.no_grad()
def measure_throughput(model: torch.nn.Module, sample: torch.Tensor, batch: int = 16, repeats: int = 5) -> float:
    """Sequences per second of ``model`` on ``sample``'s device, batch ``batch``, after one warm-up pass."""
    was_training = model.training
    model.eval()
    inputs = sample[:1].expand(batch, *sample.shape[1:]).contiguous()
    synchronize = torch.cuda.synchronize if inputs.is_cuda else (lambda: None)
    model(inputs)
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        model(inputs)
    synchronize()
    elapsed = time.perf_counter() - start
    model.train(was_training)
    return repeats * batch / elapsed


def describe_model(model: torch.nn.Module, in_shape, pre_seq_length: int, frame_input: bool, device='cpu',
                   with_throughput: bool = False, batch: int = 16, repeats: int = 5) -> dict:
    """Parameters, FLOPs and (optionally) throughput of an OpenSTL-style model, with a printable summary.

    FLOPs and throughput are measured only when ``frame_input`` says the model takes the input frames
    ``(B, T_in, C, H, W)`` alone (others need extra tensors); throughput with :func:`measure_throughput`'s
    ``batch`` and ``repeats``.
    """
    info = {'params': count_parameters(model), 'flops': None, 'flops_table': '', 'throughput': None}
    if frame_input:
        sample = dummy_input(in_shape, pre_seq_length, device=device)
        info['flops'], info['flops_table'] = count_flops(model, sample)
        if with_throughput:
            info['throughput'] = measure_throughput(model, sample, batch=batch, repeats=repeats)
    else:
        log.info('FLOPs are not counted for %s: it takes more than the input frames.', type(model).__name__)
    lines = [f'Parameters: {info["params"] / 1e6:.3f} M']
    if info['flops'] is not None:
        lines.append(f'FLOPs per sample (fvcore, input {tuple(sample.shape)}): {info["flops"] / 1e9:.3f} G')
    if info['throughput'] is not None:
        lines.append(f'Throughput: {info["throughput"]:.2f} sequences/s on {device}')
    info['summary'] = '\n'.join(lines)
    return info
