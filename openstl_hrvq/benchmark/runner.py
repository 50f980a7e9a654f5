"""Train (or load) and test one leaderboard entry through the plugin's runner, under a shared budget.

Every entry, the plugin's and OpenSTL's alike, goes through :class:`openstl_hrvq.api.Experiment` with the
same data, seed, device and budget overrides, and is measured by the same functions of
:mod:`openstl_hrvq.model_info` (parameters, fvcore FLOPs of one sample, throughput at one batch size).
"""
from __future__ import annotations

import json
import logging
import os.path as osp
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from openstl_hrvq.api import Experiment, resolve_config
from openstl_hrvq.benchmark.entries import Entry
from openstl_hrvq.files import save_json
from openstl_hrvq.model_info import describe_model
from openstl_hrvq.openstl_bridge import model_takes_frames

log = logging.getLogger(__name__)

ENTRY_RECORD = 'leaderboard_entry.json'
#: The decoding of a method whose model maps inputs to frames in one deterministic pass (e.g. SimVP).
DIRECT_DECODING = 'direct'
#: Config keys of S-HR-VQVAE that the configuration sweep (paper Table 3) groups by.
SWEEP_KEYS = ('in_shape', 'vq_layers', 'vq_codebook_size', 'vq_latent_dim', 'vq_epochs', 'prior_epochs',
              'joint_epochs')


@dataclass(frozen=True)
class Budget:
    """What every entry shares. ``None`` leaves a config's own value (e.g. its ``epoch``).

    Attributes:
        epoch: total training epochs (S-HR-VQVAE scales its stage schedule to it).
        train_size: training sequences per epoch; test_size: cap on test sequences.
    """

    dataname: str = 'mmnist'
    epoch: int | None = None
    train_size: int | None = None
    test_size: int | None = None
    seed: int = 42
    device: str = 'auto'
    data_root: str = './data'
    num_workers: int | None = None


@dataclass(frozen=True)
class CostProtocol:
    """How throughput is measured: ``repeats`` timed forward passes of a batch of ``batch`` sequences."""

    batch: int = 16
    repeats: int = 5


@dataclass
class EntryRun:
    """What running one entry produced; the predictions are in ``<save_dir>/saved/*.npy``, ``scores`` holds
    what its test computed on them (``metric()`` results by name), ``per_frame`` the same metrics per predicted
    frame (averaged over sequences; name -> S values)."""

    label: str
    save_dir: str
    epochs: int
    train_size: int | None
    train_steps: int | None
    train_time_s: float | None
    params: int
    flops: int | None
    throughput: float | None
    device: str
    test_mean: float | list | None = None
    test_std: float | list | None = None
    model_config: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    per_frame: dict = field(default_factory=dict)
    decoding: str = DIRECT_DECODING
    checkpoint: str | None = None


def entry_config(entry: Entry, budget: Budget, out_dir: str, cfg_options: dict | None = None) -> dict:
    """The resolved flat config of ``entry`` under ``budget``; results go to ``<out_dir>/<entry.label>``."""
    cli = {'config_file': entry.config_file, 'dataname': budget.dataname, 'data_root': budget.data_root,
           'seed': budget.seed, 'device': budget.device, 'res_dir': out_dir, 'ex_name': entry.label,
           'epoch': budget.epoch, 'train_size': budget.train_size, 'test_size': budget.test_size,
           'num_workers': budget.num_workers, 'no_display_method_info': True, 'cfg_options': cfg_options or {}}
    return resolve_config(cli)


def checkpoint_path(save_dir: str, given: str | None = None) -> str:
    """The checkpoint to load for an entry: ``given``, else ``<save_dir>/checkpoints/best.ckpt``."""
    path = given or osp.join(save_dir, 'checkpoints', 'best.ckpt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'No checkpoint at {path}: train the entry first (run without --load) '
                                f'or name its checkpoint with --ckpt LABEL=PATH.')
    return path


def measure_cost(method: str, model, config: dict, device: str, protocol: CostProtocol) -> dict:
    """Parameters, FLOPs of one sample (fvcore) and throughput (sequences/s) of ``model`` on ``device``."""
    info = describe_model(model.to(device), config['in_shape'], config['pre_seq_length'], model_takes_frames(method),
                          device=device, with_throughput=True, batch=protocol.batch, repeats=protocol.repeats)
    return {key: info[key] for key in ('params', 'flops', 'throughput')}


def _json_ready(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def read_record(*paths: str) -> dict:
    """The first existing entry record among ``paths`` (written when the entry was trained), else ``{}``."""
    for path in paths:
        if osp.isfile(path):
            with open(path) as handle:
                return json.load(handle)
    return {}


#: Keys of a resolved config that say how a run is started, not what it is.
NOT_IDENTITY = ('force', 'resume', 'debug', 'no_display_method_info')


def identity(config: dict) -> dict:
    """What makes two runs of an entry the same run: its resolved config, as JSON would store it."""
    return json.loads(json.dumps({key: value for key, value in config.items() if key not in NOT_IDENTITY},
                                 default=str))


def finished_run(config: dict, ckpt: str | None = None) -> EntryRun | None:
    """The recorded run of ``<res_dir>/<ex_name>`` when it finished with this very config (and, for a tested
    checkpoint, ``ckpt``), its checkpoint and test arrays still there; else None."""
    save_dir = osp.join(config['res_dir'], config['ex_name'])
    record = read_record(osp.join(save_dir, ENTRY_RECORD))
    if not record or record.get('config') != identity(config) or (ckpt and record.get('checkpoint') != ckpt):
        return None
    arrays = [osp.join(save_dir, 'saved', f'{name}.npy') for name in ('inputs', 'trues', 'preds')]
    if not all(map(osp.isfile, [record.get('checkpoint') or '', *arrays])):
        return None
    return EntryRun(**{item.name: record[item.name] for item in fields(EntryRun) if item.name in record})


def has_progress(config: dict) -> bool:
    """Whether the entry's folder holds a checkpoint that ``--resume`` can continue from."""
    folder = osp.join(config['res_dir'], config['ex_name'], 'checkpoints')
    return any(osp.isfile(osp.join(folder, name)) for name in ('last.ckpt', 'interrupted.ckpt'))


def run_entry(entry: Entry, config: dict, load: bool = False, ckpt: str | None = None,
              protocol: CostProtocol = CostProtocol(), reuse: bool = True) -> EntryRun:
    """Train ``entry`` (or load its checkpoint with ``load``), test it, and measure its cost.

    With ``reuse`` (and without ``force``) an entry that finished with the same config (and checkpoint) is not
    run again: its record is returned (:func:`finished_run`); one whose training stopped half-way resumes from
    its checkpoint. The test writes ``<save_dir>/saved/{inputs,trues,preds,metrics}.npy``;
    ``leaderboard_entry.json`` there keeps the run (its config, training time and steps), so a later ``load``
    run can still report them (it looks in its own folder, then in the experiment folder of the checkpoint it
    loads).
    """
    if reuse and not config.get('force'):
        done = finished_run(config, ckpt if load else None)
        if done is not None:
            log.info('%s: finished earlier with this config (%s); reusing it', entry.label, done.save_dir)
            return done
        if not load and has_progress(config):
            log.info('%s: continuing its interrupted training (--resume)', entry.label)
            config = dict(config, resume=True)
    # The folder's lock is released however the entry ends: a failed entry must not block the next run in it.
    with Experiment(config) as experiment:
        record_path = osp.join(experiment.save_dir, ENTRY_RECORD)
        if load:
            path = checkpoint_path(experiment.save_dir, ckpt)
            previous = read_record(record_path, osp.join(osp.dirname(osp.dirname(path)), ENTRY_RECORD))
            train_time, steps = previous.get('train_time_s'), previous.get('train_steps')
            log.info('%s: loading %s instead of training', entry.label, path)
        else:
            start = time.perf_counter()
            experiment.train()
            train_time, steps = time.perf_counter() - start, int(experiment.trainer.global_step)
            path = experiment.best_checkpoint
        experiment.test(path)
        device = experiment.device
        cost = measure_cost(config['method'], experiment.method.model, config, device, protocol)
        dataset = experiment.test_loader.dataset
        run = EntryRun(label=entry.label, save_dir=experiment.save_dir, epochs=int(config['epoch']),
                       train_size=config.get('train_size'), train_steps=steps, train_time_s=train_time,
                       params=cost['params'], flops=cost['flops'], throughput=cost['throughput'], device=device,
                       test_mean=_json_ready(getattr(dataset, 'mean', None)),
                       test_std=_json_ready(getattr(dataset, 'std', None)),
                       model_config={key: _json_ready(config[key]) for key in SWEEP_KEYS if key in config},
                       scores=dict(experiment.method.test_results), per_frame=dict(experiment.method.test_per_frame),
                       decoding=getattr(experiment.method.model, 'decoding', DIRECT_DECODING), checkpoint=path)
        save_json(record_path, dict(asdict(run), config=identity(config)))
    return run


def load_saved(save_dir: str, names=('inputs', 'trues', 'preds')) -> dict[str, np.ndarray]:
    """The arrays ``names`` (of inputs, trues, preds) that the test of an entry wrote under ``<save_dir>/saved``."""
    folder = osp.join(save_dir, 'saved')
    arrays = {}
    for name in names:
        path = osp.join(folder, f'{name}.npy')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} is missing: the entry was not tested; run it again without --load.')
        arrays[name] = np.load(path)
    return arrays
