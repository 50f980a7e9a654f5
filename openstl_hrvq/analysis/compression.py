"""Compression ratio of an S-HR-VQVAE configuration (paper Table 1), computed from its config alone.

A frame of ``H x W x C`` 8-bit pixels takes ``input_bits = H * W * C * 8`` bits. HR-VQVAE replaces it by
``h x w`` latent positions (``h = H / 4``, ``w = W / 4``), and at each position by one local index per
layer, each naming one of ``M`` codewords, so the code takes ``code_bits = h * w * L * log2(M)`` bits (the
same as one leaf index of the ``M**L``-leaf tree, ``log2(M**L)`` bits per position). The compression
ratio is ``input_bits / code_bits``. The codebooks themselves are part of the model, not of the code.
"""
from __future__ import annotations

import inspect
import math
import os.path as osp

from openstl_hrvq.api.config import load_config_file
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.datasets import dataset_parameters
from openstl_hrvq.methods import SHRVQVAE_METHOD
from openstl_hrvq.models import SHRVQVAE_Model
from openstl_hrvq.modules.conv_blocks import DOWNSAMPLE_FACTOR

PIXEL_BITS = 8


def _model_default(key: str):
    return inspect.signature(SHRVQVAE_Model.__init__).parameters[key].default


def compression_ratio(config: dict) -> dict:
    """Bits of a frame and of its code for a flat S-HR-VQVAE config (``in_shape``, ``vq_layers``,
    ``vq_codebook_size``, ``vq_latent_dim``; missing model keys take the model's defaults).

    Returns:
        ``frame`` ``(H, W, C)``, ``latent`` ``(h, w, D)``, ``layers`` L, ``codebook_size`` M,
        ``codewords_per_layer`` ``[M, M**2, ...]``, ``leaves`` M**L, ``input_bits``, ``bits_per_position``,
        ``code_bits`` and ``ratio``.
    """
    if 'in_shape' not in config:
        raise ValueError('The config has no in_shape (T, C, H, W): the compression ratio needs the frame size.')
    _, channels, height, width = (int(v) for v in config['in_shape'])
    layers = int(config.get('vq_layers', _model_default('vq_layers')))
    size = int(config.get('vq_codebook_size', _model_default('vq_codebook_size')))
    dim = int(config.get('vq_latent_dim', _model_default('vq_latent_dim')))
    h, w = height // DOWNSAMPLE_FACTOR, width // DOWNSAMPLE_FACTOR
    input_bits = height * width * channels * PIXEL_BITS
    bits_per_position = layers * math.log2(size)
    code_bits = h * w * bits_per_position
    return {'frame': [height, width, channels], 'latent': [h, w, dim], 'layers': layers, 'codebook_size': size,
            'codewords_per_layer': [size ** (i + 1) for i in range(layers)], 'leaves': size ** layers,
            'input_bits': input_bits, 'bits_per_position': bits_per_position, 'code_bits': code_bits,
            'ratio': input_bits / code_bits}


def compression_table(config_files: list[str]) -> list[dict]:
    """One :func:`compression_ratio` row per S-HR-VQVAE config file, with its ``config`` path.

    Raises:
        ValueError: a config of another method (an OpenSTL config such as SimVP's has no codebooks, so no
            compression ratio), in one line.
    """
    rows = []
    for path in config_files:
        config = load_config_file(path)
        method = config.get('method', DEFAULTS['method'])
        if not SHRVQVAE_METHOD.is_named(method):
            raise ValueError(f'{path} is a config of {method}, not of {SHRVQVAE_METHOD.display_name}: the '
                             f'compression ratio is that of its codebook indices, which only '
                             f'{SHRVQVAE_METHOD.display_name} has; pass S-HR-VQVAE configs, e.g. '
                             f'configs/mmnist/shvqvae.py.')
        if 'in_shape' not in config:
            dataname = config.get('dataname', 'mmnist')
            if dataname not in dataset_parameters:
                raise ValueError(f"{path}: unknown dataset '{dataname}' and no in_shape, so the frame size is unknown.")
            config['in_shape'] = dataset_parameters[dataname]['in_shape']
        rows.append({'config': osp.relpath(path) if osp.isabs(path) else path,
                     'dataname': config.get('dataname'), **compression_ratio(config)})
    return rows


def compression_markdown(rows: list[dict]) -> str:
    lines = ['| Config | Frame (HxWxC) | Latent (hxwxD) | Layers | M | Codewords per layer | Input bits | '
             'Code bits | Ratio |', '|---|---|---|---:|---:|---|---:|---:|---:|']
    for row in rows:
        lines.append(f"| {row['config']} | {'x'.join(map(str, row['frame']))} | {'x'.join(map(str, row['latent']))} | "
                     f"{row['layers']} | {row['codebook_size']} | {', '.join(map(str, row['codewords_per_layer']))} | "
                     f"{row['input_bits']} | {row['code_bits']:.0f} | {row['ratio']:.2f} |")
    lines.append('')
    lines.append('Input bits = H x W x C x 8; code bits = h x w x L x log2(M) with h = H/4, w = W/4 (one local index '
                 'per layer per latent position); ratio = input bits / code bits, per frame.')
    return '\n'.join(lines)
