"""What a leaderboard row is made from: a config file (the plugin's or OpenSTL's), or a trivial reference.

An entry that cannot run on this machine (an OpenSTL baseline without OpenSTL, an OpenSTL config missing
from its checkout) is kept with a ``skip_reason``, so the table says why the row is empty instead of
silently dropping it.
"""
from __future__ import annotations

import importlib.util
import os.path as osp
from dataclasses import dataclass

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api.config import load_config_file
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.method_registry import find_method

#: OpenSTL baselines by short name: their config file under ``<OpenSTL>/configs/<dataname>/``.
OPENSTL_BASELINES = {
    'simvp': 'simvp/SimVP_gSTA.py',        # SimVPv2: SimVP with gated spatiotemporal attention
    'simvp_incepu': 'simvp/SimVP_IncepU.py',   # the original SimVP
    'tau': 'TAU.py',
}

#: How OpenSTL's methods are named in the table (a registered method's registration names it).
OPENSTL_DISPLAY_NAMES = {'simvp': 'SimVP'}
SIMVP_V2_TYPE = 'gsta'


@dataclass(frozen=True)
class Entry:
    """One row to train or load and test.

    Attributes:
        label: the row's name and its experiment folder (``<out>/<label>``).
        config_file: the flat config the runner reads.
        method: the config's method name (e.g. ``'SHRVQVAE'``, ``'SimVP'``).
        display: the name shown in the table (e.g. ``'SimVPv2 (gSTA)'``).
        source: ``'openstl_hrvq'`` or ``'openstl'``, whose config it is.
        skip_reason: why the row cannot run here, or None.
    """

    label: str
    config_file: str
    method: str
    display: str
    source: str
    skip_reason: str | None = None


def display_name(method: str, model_type: str | None = None) -> str:
    spec = find_method(method)
    name = spec.display_name if spec else OPENSTL_DISPLAY_NAMES.get(method.lower(), method)
    if method.lower() == 'simvp' and (model_type or '').lower() == SIMVP_V2_TYPE:
        return 'SimVPv2 (gSTA)'
    return f'{name} ({model_type})' if model_type else name


def openstl_root() -> str | None:
    """The folder holding OpenSTL's ``openstl`` package and, in a git checkout, its ``configs``; or None."""
    spec = importlib.util.find_spec('openstl')
    if spec is None or not spec.origin:
        return None
    return osp.dirname(osp.dirname(spec.origin))


def config_entry(path: str) -> Entry:
    """An entry for a config file; raises FileNotFoundError for a missing file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path!r} does not exist: pass existing files with --configs, '
                                f'e.g. configs/mmnist/shvqvae.py.')
    config = load_config_file(path)
    method = str(config.get('method') or DEFAULTS['method'])
    label = osp.splitext(osp.basename(path))[0]
    is_plugin = find_method(method) is not None
    reason = None
    if not is_plugin and not openstl_bridge.openstl_available():
        reason = f'{method} is an OpenSTL method and OpenSTL is not importable (install it from its git repository)'
    return Entry(label, path, method, display_name(method, config.get('model_type')),
                 'openstl_hrvq' if is_plugin else 'openstl', reason)


def baseline_entry(name: str, dataname: str) -> Entry:
    """The entry of an OpenSTL baseline by short name, with OpenSTL's own config for ``dataname``."""
    key = name.lower()
    if key not in OPENSTL_BASELINES:
        raise ValueError(f"Unknown baseline '{name}': choose from {sorted(OPENSTL_BASELINES)} "
                         f"or pass its config file with --configs.")
    relative = osp.join('configs', dataname, OPENSTL_BASELINES[key])
    label = osp.splitext(osp.basename(relative))[0]
    if not openstl_bridge.openstl_available():
        return Entry(label, relative, key, label, 'openstl',
                     'OpenSTL is not importable (install it from its git repository to run its baselines)')
    path = osp.join(openstl_root(), relative)
    if not osp.isfile(path):
        return Entry(label, relative, key, label, 'openstl',
                     f"OpenSTL's config {relative} is not in {openstl_root()} (install OpenSTL from a git checkout)")
    entry = config_entry(path)
    return Entry(label, path, entry.method, entry.display, 'openstl')


def build_entries(config_files: list[str], baselines: list[str], dataname: str) -> list[Entry]:
    """Entries for the given config files, then the named OpenSTL baselines; labels must be unique."""
    entries = [config_entry(path) for path in config_files] + [baseline_entry(name, dataname) for name in baselines]
    labels = [entry.label for entry in entries]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f'Two entries share the label(s) {duplicates} (the config file name): rename a copy '
                         f'of the config so every row has its own experiment folder.')
    return entries
