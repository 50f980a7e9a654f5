"""The experiment runner: OpenSTL's ``BaseExperiment`` workflow on any device, for any registered method.

Differences from OpenSTL's runner, each for a reason:

* the accelerator is chosen from what the machine has (``device='auto'``), so the same command trains on a
  laptop CPU and on a GPU node; several GPUs or nodes go through Lightning's strategies (DDP by default);
* the data come from OpenSTL's loaders when it can serve them, else from the plugin's (:mod:`.data`);
* ``work_dirs/<ex_name>/`` holds the resolved config, CSV and TensorBoard logs and ``checkpoints/``
  (:mod:`.checkpoints`: ``best.ckpt``, ``last.ckpt``, ``interrupted.ckpt``), so ``--resume`` continues exactly
  where a run stopped;
* every method is tested by :class:`LeaderboardTestMixin`, so OpenSTL's baselines are scored by the same
  metric code as the plugin (OpenSTL's own metric call fails on scikit-image >= 0.20), and OpenSTL's timm
  schedulers are stepped by :class:`~openstl_hrvq.methods.schedulers.TimmSchedulerStep` (Lightning 2 refuses
  them otherwise).
"""
from __future__ import annotations

import glob
import logging
import os
import os.path as osp
import time
import warnings
import weakref

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from mmengine.config import Config
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api.checkpoints import (BEST, AtomicCheckpointIO, BestCheckpoint, InterruptCheckpoint,
                                         LastCheckpoint, load_checkpoint, resume_checkpoint)
from openstl_hrvq.api.data import build_dataloaders
from openstl_hrvq.api.distributed import resolve_devices, resolve_strategy
from openstl_hrvq.api.divergence import DivergenceGuard
from openstl_hrvq.api.lock import lock_experiment
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.api.console import BarAwareHandler, CompactProgressBar, quiet_console
from openstl_hrvq.api.preflight import check_data, check_folders
from openstl_hrvq.api.resume import WriteRecordAtStart, check_resume, weights_mismatch
from openstl_hrvq.api.signals import SignalGuard
from openstl_hrvq.datasets.loaders import in_order
from openstl_hrvq.distributed_utils import launcher_rank
from openstl_hrvq.errors import CheckpointError, ConfigError
from openstl_hrvq.files import save_json, save_text
from openstl_hrvq.method_registry import find_method, registered_methods
from openstl_hrvq.methods import LeaderboardTestMixin
from openstl_hrvq.methods.schedulers import TimmSchedulerStep
from openstl_hrvq.model_info import describe_model

log = logging.getLogger(__name__)

# Lightning warns that a step checkpoint of a manually optimised module holds the state after the optimizer
# step. That is the state resume needs: training continues with the next batch.
warnings.filterwarnings('ignore', message='Using ModelCheckpoint with manual optimization')
# In a multi-process run Lightning suggests syncing epoch-level training logs across ranks (a collective per
# logged value): the progress bar and CSV show rank 0's running means, which is all they are for. DDP's note that
# a convolution's gradient layout differs from its bucket's is about speed, not results.
warnings.filterwarnings('ignore', message=r'It is recommended to use `self\.log\(.*sync_dist=True\)`')
warnings.filterwarnings('ignore', message='Grad strides do not match bucket view strides')


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
    return type(base.__name__, (LeaderboardTestMixin, TimmSchedulerStep, base), {'__module__': __name__})


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


def mixed_precision(requested: bool, accelerator: str) -> str:
    """Lightning's precision for OpenSTL's ``--fp16``: float16 autocast on a GPU; bfloat16 on a CPU, the
    reduced precision the matrix units of recent CPUs (AVX-512 BF16, AMX) compute in, where a prior step runs
    about 1.45x faster than in float32 (docs/benchmarks.md). Off: full float32."""
    if not requested:
        return '32-true'
    return '16-mixed' if accelerator == 'gpu' else 'bf16-mixed'


def torch_device(device: str) -> str:
    """The torch device for a ``device`` of 'auto', 'cpu', 'cuda' or 'cuda:N': 'cpu', 'cuda' or 'cuda:N'."""
    if choose_accelerator(device) == 'cpu':
        return 'cpu'
    return device.lower() if device.lower().startswith('cuda') else 'cuda'


def setup_logging(save_dir: str, prefix: str, rank: int = 0) -> None:
    """Console and ``<save_dir>/<prefix>_<time>.log`` logging for the plugin and Lightning.

    In a multi-process run only rank 0 writes that file and the console; rank r > 0 logs to its own
    ``<prefix>_<time>_rank<r>.log`` and shows warnings and errors only.
    """
    os.makedirs(save_dir, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter('%(asctime)s - %(message)s')
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:   # a tool's basicConfig
        root.removeHandler(handler)
    consoles = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    if not consoles:
        consoles = [BarAwareHandler()]
        consoles[0].setFormatter(fmt)
        root.addHandler(consoles[0])
    if rank:
        for console in consoles:
            console.setLevel(logging.WARNING)
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
    suffix = f'_rank{rank}' if rank else ''
    file_handler = logging.FileHandler(osp.join(save_dir, f'{prefix}_{time.strftime("%Y%m%d_%H%M%S")}{suffix}.log'))
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)


class Experiment:
    """Build data, method and trainer from a resolved config; ``train()``, then ``test()``; ``close()`` (or a
    ``with`` block) releases the folder's lock, also when they raise.

    Args:
        config: a flat config from :func:`openstl_hrvq.api.config.resolve_config`.
        dataloaders: optional ``(train, val, test)`` loaders that replace the dataset's own.
    """

    def __init__(self, config: dict, dataloaders=None):
        self.config = config = dict(config)
        self.save_dir = osp.join(config['res_dir'], config['ex_name'])
        self.ckpt_dir = osp.join(self.save_dir, 'checkpoints')
        check_folders(config, self.save_dir)
        # Checked before the data and the model are built, so a wrong --device or method fails at once.
        self.accelerator = choose_accelerator(config['device'])
        self.devices = resolve_devices(config, self.accelerator)
        self.strategy = resolve_strategy(config, self.devices)
        #: The global rank (not LOCAL_RANK, which is 0 on every node): only rank 0 locks, logs to the console and
        #: touches the folder's files.
        self.processes_per_node = self.devices if isinstance(self.devices, int) else len(self.devices)
        self.rank = launcher_rank(self.processes_per_node)
        # One live run per folder, taken before anything in it is written, released by close() (or when this
        # object is collected, or the process ends).
        self._lock = lock_experiment(self.save_dir, self.rank)
        weakref.finalize(self, self._lock.release)
        try:
            self._build(config, dataloaders)
        except BaseException:
            self._lock.release()     # a half-built experiment must not hold its folder until it is collected
            raise

    def _build(self, config: dict, dataloaders) -> None:
        setup_logging(self.save_dir, 'test' if config.get('test') else 'train', self.rank)
        quiet_console()
        method_class = get_method_class(config['method'])
        pl.seed_everything(config['seed'], workers=True)
        if dataloaders is None:
            self.train_loader, self.val_loader, self.test_loader, self.data_source = build_dataloaders(config)
        else:
            self.train_loader, self.val_loader, self.test_loader = dataloaders
            self.data_source = 'given'
        check_data(config, self.train_loader, self.val_loader)
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
        """The training record (``config.py``, ``model_param.json``), written atomically when training starts
        (:class:`~openstl_hrvq.api.resume.WriteRecordAtStart`): testing another checkpoint or config, or a run that
        fails before its first step, never rewrites what the experiment was trained with."""
        save_text(osp.join(self.save_dir, 'config.py'), Config(self.config).pretty_text)
        save_json(osp.join(self.save_dir, 'model_param.json'), self.config, default=str)

    def _build_trainer(self) -> pl.Trainer:
        config = self.config
        # Not Lightning's OnExceptionCheckpoint: its presence makes fit(ckpt_path=None) resume from the last
        # checkpoint, and it writes a checkpoint even for a run that failed before its first step.
        self.interrupt_checkpoint = InterruptCheckpoint(self.ckpt_dir)
        callbacks = [
            BestCheckpoint(dirpath=self.ckpt_dir, filename='best', monitor=config['metric_for_bestckpt'],
                           mode='min', save_top_k=1, enable_version_counter=False),
            LastCheckpoint(self.ckpt_dir, int(config.get('ckpt_every_n_steps') or 0)),
            self.interrupt_checkpoint,
            DivergenceGuard(config['metric_for_bestckpt']),
            SignalGuard(),
            WriteRecordAtStart(self._write_config),
            CompactProgressBar(),
        ]
        loggers = [CSVLogger(self.save_dir, name='logs'), TensorBoardLogger(self.save_dir, name='tensorboard')]
        try:
            return self._trainer(self.devices, self.strategy, callbacks, loggers)
        except (MisconfigurationException, ValueError) as error:   # e.g. a strategy the accelerator lacks
            raise ConfigError(f'Lightning cannot run accelerator={self.accelerator}, devices={self.devices}, '
                              f'strategy={self.strategy}: {" ".join(str(error).split())}') from error

    def _trainer(self, devices, strategy, callbacks, loggers) -> pl.Trainer:
        config = self.config
        return pl.Trainer(
            accelerator=self.accelerator, devices=devices, num_nodes=int(config['num_nodes']),
            strategy=strategy, max_epochs=int(config['epoch']),
            precision=mixed_precision(bool(config.get('fp16')), self.accelerator),
            callbacks=callbacks, logger=loggers, default_root_dir=self.save_dir, plugins=[AtomicCheckpointIO()],
            log_every_n_steps=max(1, min(50, len(self.train_loader))),
            check_val_every_n_epoch=int(config.get('log_step') or 1),
            limit_val_batches=config.get('limit_val_batches') or 1.0,
            num_sanity_val_steps=1, deterministic=bool(config.get('deterministic')),
            enable_model_summary=False,     # display_method_info logs the model table with fvcore's FLOPs
        )

    def close(self) -> None:
        """Let go of the experiment folder's lock, so that another process may run in it."""
        self._lock.release()

    def __enter__(self) -> 'Experiment':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
            state = load_checkpoint(ckpt)
            check_resume(self.config, state.get('hyper_parameters') or {}, ckpt)
            problem = weights_mismatch(self.method, state['state_dict'])
            if problem:
                raise self._mismatch(ckpt, state.get('hyper_parameters') or {}, problem)
            log.info('Resuming training from %s (global step %d)', ckpt, start_step)
            self._explain_mid_epoch_resume(start_step)
        elif self.rank == 0:     # only rank 0 of a multi-process run touches the folder's files
            self._claim_checkpoint_dir()
        self.interrupt_checkpoint.start_step = start_step
        if not self.config.get('no_display_method_info'):
            self.display_method_info()
        self.trainer.fit(self.method, self.train_loader, self.val_loader, ckpt_path=ckpt)

    def _explain_mid_epoch_resume(self, start_step: int) -> None:
        """One line in place of Lightning's warning about a checkpoint from the middle of an epoch: what it means
        for this runner's data (the loaders keep no position, so the epoch's remaining steps re-read its first
        batches) and what stays exact. One process only: there the loader's length is the epoch's step count."""
        processes = self.processes_per_node * int(self.config['num_nodes'])
        try:
            steps_per_epoch = len(self.train_loader)
        except TypeError:
            return
        if processes == 1 and steps_per_epoch and start_step % steps_per_epoch:
            done = start_step % steps_per_epoch
            log.info("The checkpoint is from step %d of epoch %d: the epoch's remaining %d steps read its batches "
                     'from the start again; the step count, stages and learning-rate schedule continue exactly',
                     done, start_step // steps_per_epoch, steps_per_epoch - done)

    def _mismatch(self, path: str, trained: dict, detail: str | None = None) -> CheckpointError:
        """The one-line error for a checkpoint whose weights do not fit this config's model: both configs and the
        model keys they disagree on (the runner's own keys, such as paths and budgets, say nothing about shapes),
        else ``detail`` (which tensors differ)."""
        differ = [f'{key}={trained[key]!r} vs {self.config[key]!r}' for key in sorted(set(trained) & set(self.config))
                  if key not in DEFAULTS and trained[key] != self.config[key]]
        trained_with = trained.get('config_file') or 'another config'
        why = ', '.join(differ[:4]) if differ else detail
        return CheckpointError(
            f'Checkpoint {path} was trained with {trained_with} and does not fit the model of '
            f'{self.config.get("config_file")}' + (f' ({why})' if why else '') +
            f': use it with -c {trained_with}, or pass a checkpoint of this config with --ckpt_path.')

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
        problem = weights_mismatch(self.method, state['state_dict'])
        if problem:
            raise self._mismatch(path, state.get('hyper_parameters') or {}, problem)
        self.method.load_state_dict(state['state_dict'])
        log.info('Testing %s (epoch %s, global step %s)', path, state.get('epoch'), state.get('global_step'))
        # Each process tests a contiguous part; the method gathers them in order (methods/gather.py).
        self.trainer.test(self.method, in_order(self.test_loader))
        results = dict(self.method.test_results)
        results.update({f'{name}_mse': ref['mse'] for name, ref in self.method.test_references.items()})
        return results
