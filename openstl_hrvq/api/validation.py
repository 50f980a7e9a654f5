"""The runner's config keys and the one check of a resolved config, before anything is built.

Without this a bad value fails late and far from its key: a negative ``lr`` inside Adam after the data and the
model were built, ``limit_val_batches=1.5`` in Lightning's trainer, ``metric_for_bestckpt='foo'`` after all of
training. Every key has one entry in a :class:`~openstl_hrvq.config_keys.Key` table: :data:`RUNNER_KEYS` here
(OpenSTL's command line and the plugin's runner, with OpenSTL's defaults from
:data:`~openstl_hrvq.api.parser.DEFAULTS`), and a registered method's own table
(:attr:`~openstl_hrvq.method_registry.MethodSpec.keys`). An OpenSTL method's model keys are OpenSTL's to check.
"""
from __future__ import annotations

from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.config_keys import (ANY, APPLIED, COUNT, FLAG, NON_NEGATIVE, ON_RESUME, POSITIVE, RESTORED, SHAPE,
                                      TEXT, Key, Rule, check_table, fail)
from openstl_hrvq.datasets.loaders import VAL_SOURCES
from openstl_hrvq.errors import ConfigError
from openstl_hrvq.method_registry import find_method

#: ``limit_val_batches``: a number of batches (an integer >= 1) or a fraction of them in (0, 1].
VAL_BATCHES = Rule(float, 0, 1, above=True)
#: Validation metrics every method logs (OpenSTL's ``Base_method.validation_step`` and the plugin's).
VALIDATION_METRICS = ('val_loss',)

RUNNER_KEYS = {
    # set-up
    'device': Key("'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'", TEXT),
    'dist': Key("OpenSTL's flag for several processes (needs --devices, --gpus or a launcher)", FLAG),
    'res_dir': Key('root folder of experiments', TEXT),
    'ex_name': Key('experiment name: results go to <res_dir>/<ex_name>', TEXT),
    'fp16': Key('mixed precision: float16 on CUDA, bfloat16 on a CPU', FLAG),
    'torchscript': Key("OpenSTL's flag, not used by this runner; refused when True", Rule(choices=(False,))),
    'seed': Key('seed of every random number generator', Rule(int, 0, 2 ** 32 - 1)),
    'fps': Key('measure inference throughput before training', FLAG),
    'test': Key('only test (the best checkpoint, or --ckpt_path)', FLAG),
    'deterministic': Key('deterministic algorithms (reproducible, slower)', FLAG),
    'debug': Key("show an error's traceback instead of its one-line message", FLAG),
    # data
    'batch_size': Key('training batch size (per device)', COUNT),
    'val_batch_size': Key('validation and test batch size (per device)', COUNT),
    'num_workers': Key('dataloader worker processes', Rule(int, 0)),
    'data_root': Key('folder holding the datasets in OpenSTL\'s layout', TEXT),
    'dataname': Key('dataset name (mmnist, mfmnist, kth, tdigits, ... and OpenSTL\'s)', TEXT),
    'pre_seq_length': Key('input frames', COUNT, SHAPE),
    'aft_seq_length': Key('predicted frames', COUNT, SHAPE),
    'total_length': Key('pre_seq_length + aft_seq_length (derived when not given)', COUNT),
    'in_shape': Key('[T, C, H, W] of the input clip; C, H and W must match the data', ANY, SHAPE),
    'data_name': Key("the dataset's own name (e.g. 'mnist', 'fmnist')", ANY),
    'metrics': Key('test metrics (mse and mae are always added)', ANY),
    'train_set': Key("tdigits: the training variant ('n6', 'n6-all')", ANY),
    'use_augment': Key("OpenSTL's loaders: data augmentation", FLAG),
    'use_prefetcher': Key("OpenSTL's loaders: CUDA prefetcher", FLAG),
    'drop_last': Key('drop the last incomplete training batch', FLAG),
    'train_size': Key('training sequences per epoch (None: the full set)', Rule(int, 1, optional=True)),
    'test_size': Key('test sequences (None: the full set)', Rule(int, 1, optional=True)),
    'val_from': Key("validation data: 'train' (held out of the training data) or 'test' (OpenSTL's arrangement)",
                    Rule(choices=VAL_SOURCES)),
    'val_size': Key('validation sequences (None: as many as the test set, at most 1,000)', Rule(int, 1, optional=True)),
    # OpenSTL's WeatherBench loader (dataloader_weather.py; its resolution, data_split, comes from the dataname)
    'train_time': Key("WeatherBench: first and last year of the training data, e.g. ['2010', '2015']", ANY),
    'val_time': Key("WeatherBench: years OpenSTL's loader also opens (they must exist); validation is still "
                    "held out of training, or the test set with val_from='test'", ANY),
    'test_time': Key("WeatherBench: first and last year of the test data, e.g. ['2017', '2018']", ANY),
    'idx_in': Key('WeatherBench: hour offsets of the input frames, e.g. [-11, ..., 0]', ANY, SHAPE),
    'idx_out': Key('WeatherBench: hour offsets of the predicted frames, e.g. [1, ..., 12]', ANY, SHAPE),
    'step': Key('WeatherBench: hours between consecutive samples', COUNT),
    'level': Key('WeatherBench multi-variable data: the pressure levels used (an int: the last n; a list: those)',
                 ANY, SHAPE),
    # method
    'method': Key('method name (SHRVQVAE, or one of OpenSTL\'s)', TEXT, SHAPE),
    'config_file': Key('the flat Python config file (-c)', Rule(str, optional=True)),
    'model_type': Key("OpenSTL's model variant (e.g. SimVP's 'gSTA')", Rule(str, optional=True), SHAPE),
    'drop': Key("OpenSTL's dropout rate", NON_NEGATIVE, SHAPE),
    'drop_path': Key("OpenSTL's stochastic-depth rate", NON_NEGATIVE, SHAPE),
    'overwrite': Key("OpenSTL's flag; here command-line flags always win", FLAG),
    # optimiser and schedule
    'epoch': Key('total training epochs (SHRVQVAE scales its stages to it)', COUNT),
    'log_step': Key('validate every log_step epochs', COUNT),
    'opt': Key('optimizer', TEXT, RESTORED),
    'opt_eps': Key("the optimizer's epsilon (None: its own)", Rule(float, 0, above=True, optional=True), APPLIED),
    'opt_betas': Key("Adam's (beta1, beta2) (None: its own)", ANY, APPLIED),
    'momentum': Key("SGD's momentum", Rule(float, 0, 1), APPLIED),
    'weight_decay': Key('weight decay', NON_NEGATIVE, APPLIED),
    'clip_grad': Key('gradient clipping threshold (None: no clipping)', Rule(float, 0, above=True, optional=True),
                     APPLIED),
    'clip_mode': Key("clip the gradient's 'norm' or each 'value'", Rule(choices=('norm', 'value')), APPLIED),
    'no_display_method_info': Key('skip the parameter and FLOPs table before training', FLAG),
    'sched': Key('learning-rate schedule', Rule(str, optional=True), RESTORED),
    'lr': Key('learning rate', POSITIVE, APPLIED),
    'lr_k_decay': Key("timm's cosine k-decay", POSITIVE, RESTORED),
    'warmup_lr': Key('learning rate at the start of the warm-up', NON_NEGATIVE, APPLIED),
    'min_lr': Key("the cosine schedule's final learning rate", Rule(float, 0, optional=True), APPLIED),
    'final_div_factor': Key("onecycle: the final learning rate is lr / (25 * final_div_factor)", POSITIVE, RESTORED),
    'warmup_epoch': Key('epochs of linear learning-rate warm-up', Rule(int, 0), RESTORED),
    'decay_epoch': Key("OpenSTL's step schedule: epochs between decays", POSITIVE, RESTORED),
    'decay_rate': Key("OpenSTL's step schedule: factor per decay", POSITIVE, RESTORED),
    'filter_bias_and_bn': Key('no weight decay on biases and normalisation weights', FLAG, RESTORED),
    # Lightning
    'gpus': Key('CUDA device ids', ANY),
    'metric_for_bestckpt': Key('validation metric (lowest wins) that chooses best.ckpt', TEXT),
    'ckpt_path': Key('checkpoint to test (--test) or to resume from (--resume)', Rule(str, optional=True)),
    'resume': Key('continue the experiment from its checkpoint with the most steps', FLAG),
    'strategy': Key("Lightning strategy ('auto', 'ddp', 'fsdp', ...)", TEXT),
    'num_nodes': Key('nodes of a multi-node run', COUNT),
    'devices': Key('processes on the chosen accelerator (None: one, or one per --gpus id or launcher process)',
                   Rule(int, 1, optional=True)),
    'limit_val_batches': Key('validation batches per validation: an integer >= 1, or a fraction in (0, 1]', ANY),
    'ckpt_every_n_steps': Key('write last.ckpt every n training steps (0 or None: at epoch ends only)',
                              Rule(int, 0, optional=True)),
    'force': Key("train from scratch over the experiment's checkpoints (deletes them)", FLAG),
    'cfg_options': Key('key=value overrides (--cfg-options)', ANY),
}


def runner_defaults() -> dict:
    """OpenSTL's defaults of the runner's keys (:data:`~openstl_hrvq.api.parser.DEFAULTS`)."""
    return dict(DEFAULTS)


def key_table(method: str | None) -> dict:
    """The keys a config for ``method`` has: the runner's, with a registered method's own on top."""
    spec = find_method(method)
    return {**RUNNER_KEYS, **(spec.keys.table if spec and spec.keys else {})}


def check_values(config: dict, explicit: frozenset | set = frozenset()) -> None:
    """Raise one :class:`ConfigError` for the first value outside its key's range, or the first combination the
    run cannot honour; ``explicit`` are the keys the user set (config file, flags, ``--cfg-options``)."""
    spec = find_method(config.get('method'))
    check_table(config, key_table(config.get('method')))
    shape = config.get('in_shape')
    if not (isinstance(shape, (list, tuple)) and len(shape) == 4 and all(COUNT.accepts(size) for size in shape)):
        fail('in_shape', shape, 'four positive integers [T, C, H, W]')
    limit = config.get('limit_val_batches')
    if not (COUNT.accepts(limit) or VAL_BATCHES.accepts(limit)):
        fail('limit_val_batches', limit, 'an integer >= 1 (batches) or a fraction in (0, 1] of the validation set')
    metrics = (spec.keys.validation_metrics if spec and spec.keys else VALIDATION_METRICS)
    if config.get('metric_for_bestckpt') not in metrics:
        fail('metric_for_bestckpt', config.get('metric_for_bestckpt'),
             f'a metric the method logs at validation: one of {", ".join(map(repr, metrics))}')
    if spec and spec.keys:
        for key in sorted(set(explicit) & set(spec.keys.unread)):
            raise ConfigError(f'Config key {key!r} is not read by {spec.display_name}: {spec.keys.unread[key]}; '
                              f'remove it (see tools/train.py --list-keys).')
        if spec.keys.check is not None:
            spec.keys.check(config, frozenset(explicit))
    _check_best_checkpoint(config, spec)


def _check_best_checkpoint(config: dict, spec) -> None:
    """``best.ckpt`` is written at a validation of an epoch that may compete for it: refuse a config that
    validates none of them (``log_step`` larger than them)."""
    epochs = (spec.keys.competing_epochs(config) if spec and spec.keys and spec.keys.competing_epochs
              else range(int(config['epoch'])))
    step = int(config['log_step'])
    if not any((epoch + 1) % step == 0 for epoch in epochs):
        fail('log_step', step, f'small enough that an epoch which may become best.ckpt is validated: validation '
                               f'runs after every log_step-th epoch, and epochs {epochs.start + 1}-{epochs.stop} of '
                               f'{config["epoch"]} compete (use log_step <= {len(epochs)})')


def describe_keys(method: str, defaults: dict, file_keys=(), source: str | None = None) -> str:
    """``tools/train.py --list-keys``: every key of ``method`` with its default, accepted values, what
    ``--resume`` does with a change, and its meaning (one line each, grouped: the method's, then the runner's)."""
    table = key_table(method)
    spec = find_method(method)
    own = [key for key in (spec.keys.table if spec and spec.keys else {})]
    groups = [(f'{spec.display_name} keys' if spec else '', own),
              ('runner keys (OpenSTL\'s command line)', [key for key in RUNNER_KEYS if key not in own])]
    lines = []
    for title, keys in groups:
        if not keys:
            continue
        rows = [(key, repr(defaults[key]) if key in defaults else '-', table[key].rule.describe(), ON_RESUME[table[key].resume],
                 table[key].meaning) for key in keys]
        if spec and spec.keys and title.startswith('runner'):
            rows = [row if row[0] not in spec.keys.unread else (*row[:2], 'refused when set', '-',
                                                                  f'not read: {spec.keys.unread[row[0]]}')
                    for row in rows]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines += ['', f'# {title}', '  '.join(name.ljust(width) for name, width in
                                              zip(('key', 'default', 'accepts', 'on --resume'), widths)) + '  meaning']
        lines += ['  '.join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + '  ' + row[4] for row in rows]
    if not spec:
        others = sorted(set(file_keys) - set(table))
        lines += ['', f"# {method}'s own keys in {source} (OpenSTL's; OpenSTL checks them; refused if changed on "
                      f'--resume)', ', '.join(others) or '(none)']
    return '\n'.join(lines).lstrip('\n') + '\n'
