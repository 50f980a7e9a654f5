"""The experiment runner: OpenSTL's ``BaseExperiment`` workflow on any device, for any registered method.

Differences from OpenSTL's runner, each for a reason:

* the accelerator is chosen from what the machine has (``device='auto'``), so the same command trains on a
  laptop CPU and on a GPU node; several GPUs or nodes go through Lightning's strategies (DDP by default);
* the data come from OpenSTL's loaders when it can serve them, else from the plugin's (:mod:`.data`);
* ``work_dirs/<ex_name>/`` holds the resolved config, CSV and TensorBoard logs and ``checkpoints/``
  (:mod:`.checkpoints`: ``best.ckpt``, ``last.ckpt``, ``interrupted.ckpt``), so ``--resume`` continues exactly
  where a run stopped;
* every method is tested by :class:`LeaderboardTestMixin`, so OpenSTL's baselines are scored by the same
  metric code as the plugin (OpenSTL's own metric call fails on scikit-image >= 0.20).
"""
from __future__ import annotations

import glob
import json
import logging
import os
import os.path as osp
import time
import warnings

import pytorch_lightning as pl
import torch
from mmengine.config import Config
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api.checkpoints import (BEST, BestCheckpoint, InterruptCheckpoint, LastCheckpoint,
                                         load_checkpoint, resume_checkpoint)
from openstl_hrvq.api.data import build_dataloaders
from openstl_hrvq.api.divergence import DivergenceGuard
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.api.console import BarAwareHandler, CompactProgressBar, quiet_console
from openstl_hrvq.errors import CheckpointError, ConfigError
from openstl_hrvq.method_registry import find_method, registered_methods
from openstl_hrvq.methods import LeaderboardTestMixin
from openstl_hrvq.model_info import describe_model

log = logging.getLogger(__name__)

# Lightning warns that a step checkpoint of a manually optimised module holds the state after the optimizer
# step. That is the state resume needs: training continues with the next batch.
warnings.filterwarnings('ignore', message='Using ModelCheckpoint with manual optimization')


def get_method_class(name: str):
    """The method class for ``name``: a registered one, or OpenSTL's scored by the plugin's test code."""
    spec = find_method(name)
    if spec:
        return spec.method_class
    key = name.lower()
    openstl_methods = openstl_bridge.openstl_method_maps()
    if key not in openstl_methods:
        extra = '' if openstl_methods else ' (OpenSTL is not importable, so its baselines are unavailable)'
        plugin_methods = {registered.name for registered in registered_methods()}
        raise ConfigError(f"Unknown method '{name}': choose one of "
                          f"{sorted(plugin_methods | set(openstl_methods))}{extra}.")
    base = openstl_methods[key]
    return type(base.__name__, (LeaderboardTestMixin, base), {'__module__': __name__})


def choose_accelerator(device: str) -> str:
    """'gpu' or 'cpu' for a ``device`` of 'auto', 'cpu', 'cuda' or 'cuda:N'."""
    device = (device or 'auto').lower()
    if device == 'auto':
        return 'gpu' if torch.cuda.is_available() else 'cpu'
    if device == 'cpu':
        return 'cpu'
    if device.startswith(('cuda', 'gpu')):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device} was asked for but no CUDA device is available: "
                              f"use --device auto or --device cpu.")
        return 'gpu'
    raise ConfigError(f"Unknown --device {device!r}: use 'auto', 'cpu' or 'cuda'.")


def torch_device(device: str) -> str:
    """The torch device for a ``device`` of 'auto', 'cpu', 'cuda' or 'cuda:N': 'cpu', 'cuda' or 'cuda:N'."""
    if choose_accelerator(device) == 'cpu':
        return 'cpu'
    return device.lower() if device.lower().startswith('cuda') else 'cuda'


def setup_logging(save_dir: str, prefix: str) -> None:
    """Console and ``<save_dir>/<prefix>_<time>.log`` logging for the plugin and Lightning."""
    os.makedirs(save_dir, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter('%(asctime)s - %(message)s')
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:   # a tool's basicConfig
        root.removeHandler(handler)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        console = BarAwareHandler()
        console.setFormatter(fmt)
        root.addHandler(console)
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
    file_handler = logging.FileHandler(osp.join(save_dir, f'{prefix}_{time.strftime("%Y%m%d_%H%M%S")}.log'))
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)


class Experiment:
    """Build data, method and trainer from a resolved config; ``train()``, then ``test()``.

    Args:
        config: a flat config from :func:`openstl_hrvq.api.config.resolve_config`.
        dataloaders: optional ``(train, val, test)`` loaders that replace the dataset's own.
    """

    def __init__(self, config: dict, dataloaders=None):
        self.config = config = dict(config)
        self.save_dir = osp.join(config['res_dir'], config['ex_name'])
        self.ckpt_dir = osp.join(self.save_dir, 'checkpoints')
        setup_logging(self.save_dir, 'test' if config.get('test') else 'train')
        quiet_console()
        # Checked before the data and the model are built, so a wrong --device or method fails at once.
        self.accelerator = choose_accelerator(config['device'])
        method_class = get_method_class(config['method'])
        pl.seed_everything(config['seed'], workers=True)
        if dataloaders is None:
            self.train_loader, self.val_loader, self.test_loader, self.data_source = build_dataloaders(config)
        else:
            self.train_loader, self.val_loader, self.test_loader = dataloaders
            self.data_source = 'given'
        dataset = self.test_loader.dataset
        config['method'] = config['method'].lower()
        self.method = method_class(steps_per_epoch=len(self.train_loader), test_mean=dataset.mean,
                                   test_std=dataset.std, save_dir=self.save_dir, **config)
        #: Where the model runs outside the Trainer (cost measurement, custom evaluation); Lightning moves it
        #: back to the CPU after fit and test.
        self.device = 'cuda' if self.accelerator == 'gpu' else 'cpu'
        self.model_info = None
        self.trainer = self._build_trainer()

    # ------------------------------------------------------------------ set-up
    def _write_config(self) -> None:
        """The training record (``config.py``, ``model_param.json``): written by :meth:`train` only, so testing
        another checkpoint or config never rewrites what the experiment was trained with."""
        os.makedirs(self.save_dir, exist_ok=True)
        Config(self.config).dump(osp.join(self.save_dir, 'config.py'))
        with open(osp.join(self.save_dir, 'model_param.json'), 'w') as handle:
            json.dump(self.config, handle, indent=1, default=str)

    def _strategy(self, devices) -> str:
        if self.config.get('strategy') not in (None, 'auto'):
            return self.config['strategy']
        distributed = (isinstance(devices, list) and len(devices) > 1) or int(self.config['num_nodes']) > 1
        if not distributed:
            return 'auto'
        spec = find_method(self.config['method'])
        return spec.ddp_strategy if spec else 'ddp'

    def _build_trainer(self) -> pl.Trainer:
        config = self.config
        devices = list(config['gpus']) if self.accelerator == 'gpu' else 1
        # Not Lightning's OnExceptionCheckpoint: its presence makes fit(ckpt_path=None) resume from the last
        # checkpoint, and it writes a checkpoint even for a run that failed before its first step.
        self.interrupt_checkpoint = InterruptCheckpoint(self.ckpt_dir)
        callbacks = [
            BestCheckpoint(dirpath=self.ckpt_dir, filename='best', monitor=config['metric_for_bestckpt'],
                           mode='min', save_top_k=1, enable_version_counter=False),
            LastCheckpoint(self.ckpt_dir, int(config.get('ckpt_every_n_steps') or 0)),
            self.interrupt_checkpoint,
            DivergenceGuard(config['metric_for_bestckpt']),
            CompactProgressBar(),
        ]
        loggers = [CSVLogger(self.save_dir, name='logs'), TensorBoardLogger(self.save_dir, name='tensorboard')]
        return pl.Trainer(
            accelerator=self.accelerator, devices=devices, num_nodes=int(config['num_nodes']),
            strategy=self._strategy(devices), max_epochs=int(config['epoch']),
            precision='16-mixed' if config.get('fp16') and self.accelerator == 'gpu' else '32-true',
            callbacks=callbacks, logger=loggers, default_root_dir=self.save_dir,
            log_every_n_steps=max(1, min(50, len(self.train_loader))),
            check_val_every_n_epoch=int(config.get('log_step') or 1),
            limit_val_batches=config.get('limit_val_batches') or 1.0,
            num_sanity_val_steps=1, deterministic=bool(config.get('deterministic')),
            enable_model_summary=False,     # display_method_info logs the model table with fvcore's FLOPs
        )

    def display_method_info(self) -> dict:
        """Log the parameter count and FLOPs (fvcore) of the model, like OpenSTL does before training."""
        config = self.config
        self.model_info = describe_model(self.method.model.to(self.device), config['in_shape'],
                                         config['pre_seq_length'], openstl_bridge.model_takes_frames(config['method']),
                                         device=self.device, with_throughput=bool(config.get('fps')))
        log.info('Model info (%s):\n%s\n%s', config['method'], self.model_info['flops_table'],
                 self.model_info['summary'])
        return self.model_info

    # ------------------------------------------------------------------ train / test
    def _claim_checkpoint_dir(self) -> None:
        """Refuse to train over another run's checkpoints unless ``force`` (then delete them).

        A fresh run would overwrite that run's ``best.ckpt`` with a worse early model and leave its other files
        for a later ``--resume`` to mix up with this run.
        """
        existing = sorted(glob.glob(osp.join(self.ckpt_dir, '*.ckpt')))
        if not existing:
            return
        if not self.config.get('force'):
            raise CheckpointError(
                f'{self.save_dir} already holds checkpoints ({", ".join(map(osp.basename, existing))}): pass '
                f'--resume to continue that run, --force to start over (deletes them), or use a new --ex_name.')
        for path in existing:
            os.remove(path)
        log.info('--force: deleted %s; training from scratch', ', '.join(existing))

    def train(self) -> None:
        """Train from scratch, or with ``resume`` from the checkpoint with the most progress."""
        ckpt, start_step = None, 0
        if self.config.get('resume'):
            ckpt, start_step = resume_checkpoint(self.ckpt_dir, self.config.get('ckpt_path'))
            log.info('Resuming training from %s (global step %d)', ckpt, start_step)
        else:
            self._claim_checkpoint_dir()
        self._write_config()
        self.interrupt_checkpoint.start_step = start_step
        if not self.config.get('no_display_method_info'):
            self.display_method_info()
        self.trainer.fit(self.method, self.train_loader, self.val_loader, ckpt_path=ckpt)

    def _mismatch(self, path: str, trained: dict) -> CheckpointError:
        """The one-line error for a checkpoint whose weights do not fit this config's model: both configs and the
        model keys they disagree on (the runner's own keys, such as paths and budgets, say nothing about shapes)."""
        differ = [f'{key}={trained[key]!r} vs {self.config[key]!r}' for key in sorted(set(trained) & set(self.config))
                  if key not in DEFAULTS and trained[key] != self.config[key]]
        trained_with = trained.get('config_file') or 'another config'
        return CheckpointError(
            f'Checkpoint {path} was trained with {trained_with} and does not fit the model of '
            f'{self.config.get("config_file")}' + (f' ({", ".join(differ[:4])})' if differ else '') +
            f': test it with -c {trained_with}, or pass a checkpoint of this config with --ckpt_path.')

    @property
    def best_checkpoint(self) -> str:
        """``checkpoints/best.ckpt`` of this experiment."""
        return osp.join(self.ckpt_dir, BEST)

    def test(self, ckpt_path: str | None = None) -> dict:
        """Test the given checkpoint, else ``--ckpt_path`` with ``--test``, else ``checkpoints/best.ckpt``.

        Without ``--test`` the run trains, and ``--ckpt_path`` is where ``--resume`` continued from (possibly another
        run's checkpoint), not its result: the run's own ``best.ckpt`` is tested. Returns the metrics.
        """
        chosen = self.config.get('ckpt_path') if self.config.get('test') else None
        path = ckpt_path or chosen or self.best_checkpoint
        state = load_checkpoint(path)
        try:
            self.method.load_state_dict(state['state_dict'])
        except RuntimeError as error:
            raise self._mismatch(path, state.get('hyper_parameters') or {}) from error
        log.info('Testing %s (epoch %s, global step %s)', path, state.get('epoch'), state.get('global_step'))
        self.trainer.test(self.method, self.test_loader)
        results = dict(self.method.test_results)
        results.update({f'{name}_mse': ref['mse'] for name, ref in self.method.test_references.items()})
        return results
