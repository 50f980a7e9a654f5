"""The bridge to OpenSTL 1.0.0: register the plugin where OpenSTL looks for methods and datasets.

OpenSTL has no plugin mechanism: methods live in the plain dict ``openstl.methods.method_maps``, its parser
restricts ``--method`` and ``--dataname`` with argparse ``choices``, ``BaseExperiment.display_method_info``
raises ``ValueError`` for a method it does not know, and ``openstl.datasets.load_data`` dispatches on fixed
names. :func:`register` extends each of these in place, idempotently, with the methods of
:mod:`openstl_hrvq.method_registry` and the plugin's datasets. Everything here is a no-op when OpenSTL is not
importable: the plugin runs on its own then.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import warnings

import torch

from openstl_hrvq.method_registry import find_method, registered_methods
from openstl_hrvq.model_info import describe_model

log = logging.getLogger(__name__)

#: OpenSTL's methods whose model takes the input frames alone (those its ``display_method_info`` feeds a frame
#: tensor); the others need extra tensors.
OPENSTL_FRAME_INPUT_METHODS = ('simvp', 'tau', 'mmvp', 'wast')


@functools.lru_cache(maxsize=None)
def _import_openstl():
    """OpenSTL's packages, or None. An installed but broken OpenSTL is reported once, not raised."""
    if importlib.util.find_spec('openstl') is None:
        return None
    try:
        # OpenSTL's imports (timm, torch.jit) emit deprecation warnings on current releases: not ours to show.
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)
            warnings.simplefilter('ignore', DeprecationWarning)
            return {name: importlib.import_module(f'openstl.{name}')
                    for name in ('methods', 'datasets', 'utils', 'api')}
    except Exception as error:  # OpenSTL imports many optional packages; any failure means "not usable"
        log.warning('OpenSTL is installed but does not import (%s: %s); openstl_hrvq runs without it.',
                    type(error).__name__, error)
        return None


def openstl_available() -> bool:
    return _import_openstl() is not None


def openstl_datasets():
    """``openstl.datasets`` or None."""
    modules = _import_openstl()
    return modules['datasets'] if modules else None


def openstl_module(name: str):
    """``openstl.<name>`` (e.g. ``'datasets.dataloader_moving_mnist'``), or None without OpenSTL."""
    return importlib.import_module(f'openstl.{name}') if openstl_available() else None


def openstl_method_maps() -> dict:
    """OpenSTL's ``method_maps`` (name -> method class), or an empty dict without OpenSTL."""
    modules = _import_openstl()
    return modules['methods'].method_maps if modules else {}


def model_takes_frames(method: str) -> bool:
    """Whether the model of ``method`` (any case; the plugin's or OpenSTL's) maps the input frames alone to
    the prediction, so that its FLOPs and throughput can be measured on them."""
    spec = find_method(method)
    return spec.frame_input if spec else method.lower() in OPENSTL_FRAME_INPUT_METHODS


def method_choices() -> list[str]:
    """The ``--method`` spellings of the registered methods: the name and the class name, as OpenSTL's parser
    accepts ``simvp`` and ``SimVP``."""
    return [spelling for spec in registered_methods() for spelling in (spec.name, spec.method_class.__name__)]


def _extend_choices(parser, flag: str, names) -> None:
    for action in parser._actions:
        if flag in action.option_strings and action.choices is not None:
            action.choices = list(action.choices) + [name for name in names if name not in action.choices]


def _patch_parser(utils, dataset_names) -> None:
    original = utils.parser.create_parser
    if getattr(original, '_openstl_hrvq', False):
        return

    @functools.wraps(original)
    def create_parser():
        parser = original()
        _extend_choices(parser, '--method', method_choices())
        _extend_choices(parser, '--dataname', dataset_names)
        return parser

    create_parser._openstl_hrvq = True
    utils.parser.create_parser = create_parser
    utils.create_parser = create_parser


def _patch_display_method_info(api) -> None:
    experiment = api.BaseExperiment
    original = experiment.display_method_info
    if getattr(original, '_openstl_hrvq', False):
        return

    @functools.wraps(original)
    def display_method_info(self, args):
        spec = find_method(args.method)
        if spec is None:
            return original(self, args)
        device = 'cuda' if str(args.device).startswith('cuda') and torch.cuda.is_available() else 'cpu'
        info = describe_model(self.method.model.to(device), args.in_shape, args.pre_seq_length, spec.frame_input,
                              device=device, with_throughput=bool(args.fps))
        fps = f'Throughputs of {spec.name}: {info["throughput"]:.3f}\n' if info['throughput'] else ''
        return repr(self.method.model), info['flops_table'], fps, '-' * 80 + '\n'

    display_method_info._openstl_hrvq = True
    experiment.display_method_info = display_method_info


def _patch_datasets(datasets) -> list[str]:
    """Add the plugin's datasets that OpenSTL lacks to its ``dataset_parameters`` and ``load_data``."""
    from openstl_hrvq.datasets import dataset_parameters, load_data
    new = [name for name in dataset_parameters if name not in datasets.dataset_parameters]
    for name in new:
        datasets.dataset_parameters[name] = dict(dataset_parameters[name])
    original = datasets.load_data
    if new and not getattr(original, '_openstl_hrvq', False):
        @functools.wraps(original)
        def dispatch(dataname, batch_size, val_batch_size, num_workers, data_root, dist=False, **kwargs):
            if dataname in new:
                return load_data(dataname, batch_size, val_batch_size, num_workers, data_root, dist=dist, **kwargs)
            return original(dataname, batch_size, val_batch_size, num_workers, data_root, dist=dist, **kwargs)

        dispatch._openstl_hrvq = True
        datasets.load_data = dispatch
        importlib.import_module('openstl.datasets.dataloader').load_data = dispatch
    return new


def register() -> bool:
    """Register the plugin's methods (:func:`~openstl_hrvq.method_registry.registered_methods`) and extra
    datasets with OpenSTL; False when OpenSTL is absent. Run again for a method registered later."""
    modules = _import_openstl()
    if modules is None:
        return False
    for spec in registered_methods():
        modules['methods'].method_maps[spec.name] = spec.method_class
    new_datasets = _patch_datasets(modules['datasets'])
    _patch_parser(modules['utils'], new_datasets)
    _patch_display_method_info(modules['api'])
    return True
