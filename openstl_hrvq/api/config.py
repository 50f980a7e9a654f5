"""Resolve an experiment config: defaults, the flat config file, command-line flags and ``--cfg-options``.

Config files are flat Python files in OpenSTL's style (``method = 'SHRVQVAE'`` then keys, no imports), read
with mmengine's ``Config`` so OpenSTL's own ``load_config`` reads the same files. Keys are checked: a key no
component reads is a typo until proven otherwise, so it is an error that names it and suggests the nearest
known key. A registered method's keys are derived from the code that reads them
(:attr:`~openstl_hrvq.method_registry.MethodSpec.config_keys`), never listed by hand.
"""
from __future__ import annotations

import difflib
import os.path as osp
from typing import Iterable, Mapping

from mmengine.config import Config

from openstl_hrvq.api.experiment import get_method_class
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.api.validation import check_values
from openstl_hrvq.datasets import dataset_parameters
from openstl_hrvq.errors import ConfigError, MissingFileError, UnknownKeyError
from openstl_hrvq.method_registry import find_method

#: Keys that may appear in a dataset's parameters (OpenSTL's and the plugin's).
DATASET_KEYS = ('in_shape', 'pre_seq_length', 'aft_seq_length', 'total_length', 'data_name', 'metrics',
                'train_size', 'test_size')


def load_config_file(path: str) -> dict:
    """Read a flat Python config into a dict (mmengine's reader, OpenSTL's file format).

    A file that does not parse or run is reported with its name and line: mmengine's own trace names neither.
    """
    if not osp.isfile(path):
        raise MissingFileError(f'Config file {path!r} does not exist: pass an existing file with -c, '
                               f'e.g. configs/mmnist/shvqvae.py.')
    try:
        return Config.fromfile(path).to_dict()
    except SyntaxError as error:
        raise ConfigError(f'Config file {path} has a syntax error at line {error.lineno}: {error.msg} '
                          f'({(error.text or "").strip()!r}); fix that line (one `key = value` per line).') from error
    except Exception as error:  # the file is Python: running it can raise anything (NameError, ImportError...)
        raise ConfigError(f'Config file {path} does not run ({type(error).__name__}: {error}); fix it so that '
                          f'it only assigns values (`key = value`, no undefined names).') from error


def known_keys(method: str, file_keys: Iterable[str] = ()) -> set[str]:
    """The keys a config for ``method`` may hold.

    For a registered method these are the runner's, the datasets' and the method's own keys.
    OpenSTL's methods take model keys this plugin cannot list, so their config file vouches for its own keys.
    """
    keys = set(DEFAULTS) | set(DATASET_KEYS) | {'cfg_options'}
    for params in dataset_parameters.values():
        keys |= set(params)
    spec = find_method(method)
    return keys | (spec.config_keys if spec else set(file_keys))


def check_keys(keys: Iterable[str], allowed: set[str], source: str) -> None:
    """Raise one clear error for the first key that nothing reads."""
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ''
            raise UnknownKeyError(f"Unknown config key '{key}' in {source}.{hint} "
                                  f"Remove it or fix its name (docs/method.md describes the keys).")


def default_config_path(method: str, dataname: str, root: str = 'configs') -> str:
    """OpenSTL's convention when no ``-c`` is given: ``configs/<dataname>/<method>.py`` (a registered method's
    ``config_stem`` for ``<method>``)."""
    spec = find_method(method)
    return osp.join(root, dataname, f'{spec.config_stem if spec else method}.py')


def resolve_config(cli: Mapping | None = None) -> dict:
    """Merge defaults < config file < explicit flags < ``cfg_options`` into one flat dict.

    Args:
        cli: the parsed command line as a dict (``vars(args)``); ``None`` values mean "not given".

    Returns:
        The resolved config, with ``dataset_parameters[dataname]`` filled in where the config is silent.

    Raises:
        UserError: an unknown key, method or dataset, a missing or broken config file, or a value outside its
            key's range (:func:`openstl_hrvq.api.validation.check_values`), in one sentence.
    """
    cli = {key: value for key, value in dict(cli or {}).items() if value is not None}
    cfg_options = dict(cli.pop('cfg_options', None) or {})
    # --cfg-options beat the flags for 'method' as for every other key.
    method = cfg_options.get('method') or cli.get('method') or DEFAULTS['method']
    path = cli.get('config_file') or default_config_path(method, cli.get('dataname') or DEFAULTS['dataname'])
    from_file = load_config_file(path)
    method = cfg_options.get('method') or cli.get('method') or from_file.get('method') or DEFAULTS['method']
    get_method_class(method)   # an unknown method is named here, before anything is built
    allowed = known_keys(method, from_file)
    check_keys(from_file, allowed, path)
    check_keys(cfg_options, allowed, '--cfg-options')

    config = dict(DEFAULTS)
    config.update(from_file)
    config.update(cli)
    config.update(cfg_options)
    config['config_file'] = path
    config['method'] = method
    dataname = config['dataname']
    if dataname not in dataset_parameters:
        raise ConfigError(f"Unknown dataset '{dataname}': choose one of {sorted(dataset_parameters)} "
                          f"(-d / dataname in the config).")
    explicit = set(from_file) | set(cli) | set(cfg_options)
    for key, value in dataset_parameters[dataname].items():
        if key not in explicit:
            config[key] = value
    check_values(config)
    if 'total_length' not in explicit:
        config['total_length'] = config['pre_seq_length'] + config['aft_seq_length']
    return config
