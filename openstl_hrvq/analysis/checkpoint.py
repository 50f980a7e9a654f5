"""Load a trained S-HR-VQVAE and the test sequences it was scored on, for the analyses.

A checkpoint written by the runner holds the whole flat config in ``hyper_parameters`` (the method calls
``save_hyperparameters()``), so a checkpoint file alone is enough to rebuild the model.
"""
from __future__ import annotations

import logging
import os.path as osp
from dataclasses import dataclass

import numpy as np
import torch

from openstl_hrvq.api.data import test_arrays
from openstl_hrvq.methods import SHRVQVAE_METHOD
from openstl_hrvq.models import SHRVQVAE_Model

log = logging.getLogger(__name__)

MODEL_PREFIX = 'model.'


@dataclass
class TrainedModel:
    """A trained model in eval mode, its flat config and where it came from."""

    model: SHRVQVAE_Model
    config: dict
    checkpoint: str
    work_dir: str | None


def find_checkpoint(work_dir: str | None = None, ckpt: str | None = None) -> str:
    """``ckpt`` if given, else ``<work_dir>/checkpoints/best.ckpt``; a clear error when it does not exist."""
    if ckpt is None and work_dir is None:
        raise ValueError('Name the trained model: pass --ckpt PATH or --work_dir <experiment folder>.')
    path = ckpt or osp.join(work_dir, 'checkpoints', 'best.ckpt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'No checkpoint at {path}: train the model first (tools/train.py or '
                                f'tools/leaderboard.py), or pass an existing file with --ckpt.')
    return path


def load_trained_model(work_dir: str | None = None, ckpt: str | None = None, device: str = 'cpu') -> TrainedModel:
    """Rebuild :class:`SHRVQVAE_Model` from a runner checkpoint and load its weights (eval mode, on ``device``)."""
    path = find_checkpoint(work_dir, ckpt)
    state = torch.load(path, map_location='cpu', weights_only=False)
    config = dict(state.get('hyper_parameters') or {})
    method = str(config.get('method', '')).lower()
    if not SHRVQVAE_METHOD.is_named(method):
        raise ValueError(f'{path} is a checkpoint of method {method or "unknown"!r}; the analyses need an '
                         f'{SHRVQVAE_METHOD.display_name} ({SHRVQVAE_METHOD.method_class.__name__}) checkpoint.')
    model = SHRVQVAE_Model(**config)
    weights = {key[len(MODEL_PREFIX):]: value for key, value in state['state_dict'].items()
               if key.startswith(MODEL_PREFIX)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f'{path} does not fit the current SHRVQVAE_Model code (it was written by another version '
                         f'of the model): retrain it, or check out the code it was trained with. '
                         f'Details: {str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else error}'
                         ) from error
    model.to(device).eval()
    return TrainedModel(model, config, path, work_dir or config.get('save_dir'))


def test_sequences(trained: TrainedModel, num_sequences: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(N, T_in, C, H, W)`` and true futures ``(N, S, C, H, W)`` of the model's test set.

    The arrays its test wrote (``<work_dir>/saved``) when they exist, so the analyses use the leaderboard's
    sequences; otherwise the dataset's test split, built from the config.
    """
    saved = osp.join(trained.work_dir or '', 'saved')
    if osp.isfile(osp.join(saved, 'inputs.npy')) and osp.isfile(osp.join(saved, 'trues.npy')):
        inputs, trues = np.load(osp.join(saved, 'inputs.npy')), np.load(osp.join(saved, 'trues.npy'))
    else:
        config = dict(trained.config, test_size=num_sequences or trained.config.get('test_size'))
        log.info('No saved test arrays under %s: loading the test split of %s', saved, config['dataname'])
        inputs, trues, _ = test_arrays(config)
    if num_sequences is not None:
        inputs, trues = inputs[:num_sequences], trues[:num_sequences]
    return inputs, trues
