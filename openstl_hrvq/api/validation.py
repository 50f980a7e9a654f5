"""Check a resolved config's values before anything is built, naming the config key and the accepted range.

Without this a bad value fails late and far from its key: a negative ``lr`` inside Adam after the data and the
model were built, ``batch_size='x'`` in torch's sampler, ``vq_layers=0`` with the argument names of an internal
class. Only keys whose range the plugin knows are checked; an OpenSTL method's model keys are OpenSTL's to check.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from openstl_hrvq.datasets.loaders import VAL_SOURCES
from openstl_hrvq.errors import ConfigError
from openstl_hrvq.methods import SHRVQVAE_METHOD
from openstl_hrvq.methods.training_config import PRIOR_LOSS_FRAMES, SCHEDULES
from openstl_hrvq.methods.stage_schedule import STAGES
from openstl_hrvq.models.st_pixelcnn import DECODE_ORDERS
from openstl_hrvq.modules.path_embedding import MAX_PATH_ROWS


@dataclass(frozen=True)
class Rule:
    """The values a key accepts: an ``int``, a ``float`` (any real number) or a ``bool`` in ``[low, high]``
    (``low`` excluded when ``above``), one of ``choices``, and ``None`` when ``optional``."""

    kind: type = int
    low: float | None = None
    high: float | None = None
    above: bool = False
    optional: bool = False
    choices: tuple = ()

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return self.kind is bool and isinstance(value, bool)
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.choices:
            text = 'one of ' + ', '.join(map(repr, self.choices))
        elif self.kind is bool:
            text = 'True or False'
        else:
            text = 'an integer' if self.kind is int else 'a number'
            if self.low is not None and self.high is not None:
                text += f' in {"(" if self.above else "["}{self.low}, {self.high}]'
            elif self.low is not None:
                text += f' {">" if self.above else ">="} {self.low}'
        return text + (' or None' if self.optional else '')


POSITIVE = Rule(float, 0, above=True)
COUNT = Rule(int, 1)

#: Keys every method's run reads (the runner's and the data's).
RUNNER_RULES = {
    'batch_size': COUNT, 'val_batch_size': COUNT, 'num_workers': Rule(int, 0), 'epoch': COUNT, 'seed': Rule(int),
    'log_step': COUNT, 'num_nodes': COUNT, 'ckpt_every_n_steps': Rule(int, 0, optional=True),
    'train_size': Rule(int, 1, optional=True), 'test_size': Rule(int, 1, optional=True),
    'pre_seq_length': COUNT, 'aft_seq_length': COUNT, 'lr': POSITIVE, 'weight_decay': Rule(float, 0),
    'clip_grad': Rule(float, 0, above=True, optional=True), 'limit_val_batches': POSITIVE,
    'min_lr': Rule(float, 0, optional=True),
    'val_from': Rule(choices=VAL_SOURCES), 'val_size': Rule(int, 1, optional=True),
    'devices': Rule(int, 1, optional=True),
}

#: Keys of the plugin's own method and model (OpenSTL's methods read their own).
SHRVQVAE_RULES = {
    **{f'{stage}_lr': Rule(float, 0, above=True, optional=True) for stage in STAGES},
    **{f'{stage}_epochs': Rule(int, 0) for stage in STAGES},
    'joint_lambda': Rule(float, 0), 'vq_frames': Rule(int, 1, optional=True),
    'prior_loss_frames': Rule(choices=PRIOR_LOSS_FRAMES), 'prior_resample_prob': Rule(float, 0, 1),
    'prior_resample_rounds': COUNT, 'prior_resample_temperature': POSITIVE,
    'sched': Rule(choices=SCHEDULES + (None,)),
    'vq_layers': COUNT, 'vq_codebook_size': Rule(int, 2), 'vq_latent_dim': COUNT, 'vq_hidden': COUNT,
    'vq_res_hidden': COUNT, 'vq_res_blocks': Rule(int, 0), 'vq_beta': Rule(float, 0), 'vq_ema': Rule(bool),
    'vq_decay': Rule(float, 0, 1), 'prior_hidden': Rule(int, 2), 'prior_blocks': COUNT, 'prior_heads': COUNT,
    'prior_local_blocks': Rule(int, 0),
    'prior_kernel': Rule(int, 3), 'decode_order': Rule(choices=DECODE_ORDERS), 'sample_temperature': Rule(float, 0),
    'decoding_samples': COUNT,
}


def _fail(key: str, value, expected: str) -> None:
    raise ConfigError(f'Config key {key!r} must be {expected}, got {value!r}: fix it in the config file, '
                      f'the command line or --cfg-options.')


def check_values(config: dict) -> None:
    """Raise one :class:`ConfigError` for the first value outside its key's range (see the rule tables)."""
    shrvqvae = SHRVQVAE_METHOD.is_named(config.get('method'))
    rules = dict(RUNNER_RULES)
    if shrvqvae:
        rules.update(SHRVQVAE_RULES)
    for key, rule in rules.items():
        if key in config and not rule.accepts(config[key]):
            _fail(key, config[key], rule.describe())
    shape = config.get('in_shape')
    if not (isinstance(shape, (list, tuple)) and len(shape) == 4
            and all(COUNT.accepts(size) for size in shape)):
        _fail('in_shape', shape, 'four positive integers [T, C, H, W]')
    if shrvqvae:
        _check_shrvqvae(config)


def _check_shrvqvae(config: dict) -> None:
    """The constraints between the S-HR-VQVAE keys that the model and the schedule would raise on later."""
    if config['in_shape'][2] % 4 or config['in_shape'][3] % 4:
        _fail('in_shape', config['in_shape'], 'a frame size H x W divisible by 4 (the encoder downsamples by 4)')
    value_range = config.get('vq_value_range', (0.0, 1.0))
    if value_range is not None and not (isinstance(value_range, (list, tuple)) and len(value_range) == 2
                                        and all(Rule(float).accepts(v) for v in value_range)
                                        and value_range[0] < value_range[1]):
        _fail('vq_value_range', value_range, 'None (no clamp) or [low, high] with low < high')
    if config.get('prior_kernel', 3) % 2 == 0:
        _fail('prior_kernel', config['prior_kernel'], 'an odd integer >= 3 (a PixelCNN mask needs a centre)')
    hidden, heads = config.get('prior_hidden', 64), config.get('prior_heads', 4)
    if hidden % heads:
        _fail('prior_heads', heads, f'a divisor of prior_hidden={hidden} (each attention head gets equal channels)')
    layers, size = config.get('vq_layers', 3), config.get('vq_codebook_size', 4)
    if sum(size ** i for i in range(1, layers + 1)) > MAX_PATH_ROWS:
        _fail('vq_layers', layers, f'small enough that the tree of vq_codebook_size={size} codewords per node has '
                                   f'at most {MAX_PATH_ROWS} paths')
    if config.get('decoding_samples', 1) > 1 and config.get('sample_temperature', 0.0) <= 0:
        _fail('sample_temperature', config.get('sample_temperature', 0.0),
              f'> 0 when decoding_samples={config["decoding_samples"]} (it averages sampled rollouts)')
    used = [stage for stage in STAGES if config.get(f'{stage}_epochs', 0)]
    if not {'vq', 'prior'} & set(used):
        _fail('vq_epochs', config.get('vq_epochs', 0), '> 0, or prior_epochs > 0 (the schedule trains nothing)')
    if config.get('epoch') and config['epoch'] < len(used):
        _fail('epoch', config['epoch'], f'at least {len(used)}: one epoch for each of the stages {used}')
