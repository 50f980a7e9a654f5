"""The plugin's methods by name, each with the facts the runner, the bridge and the tools read about it.

A method is registered once, where it is defined (``openstl_hrvq.methods``), with :func:`register_method`;
config resolution, the experiment runner, the OpenSTL bridge, the leaderboard, the analyses and the tools
look it up here instead of spelling its name, so a second method needs no edit anywhere else.
Names are looked up case-insensitively: configs spell them as OpenSTL's do (``method = 'SHRVQVAE'``).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping

_METHODS: dict[str, 'MethodSpec'] = {}


def constructor_keys(cls: type) -> frozenset[str]:
    """The named parameters of ``cls(...)`` (a dataclass's fields): the config keys it reads.

    A ``**kwargs`` catch-all is left out: it is how a model ignores the rest of a flat config.
    """
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(name for name, parameter in inspect.signature(cls).parameters.items()
                     if parameter.kind in named)


def constructor_defaults(cls: type) -> dict:
    """The default values of ``cls(...)``'s named parameters (a dataclass's fields) that have one."""
    return {name: parameter.default for name, parameter in inspect.signature(cls).parameters.items()
            if name in constructor_keys(cls) and parameter.default is not inspect.Parameter.empty}


@dataclass(frozen=True)
class MethodKeys:
    """What the runner checks of a method's config, beyond the runner's own keys.

    Attributes:
        table: key -> :class:`~openstl_hrvq.config_keys.Key` for every key the method reads (its
            ``config_keys``, plus runner keys whose range or meaning it narrows, e.g. ``opt``).
        unread: runner keys the method does not read -> why; setting one is refused.
        validation_metrics: what ``metric_for_bestckpt`` may name.
        check: ``check(config, explicit_keys)`` raises a ConfigError for a combination of values it cannot honour.
        competing_epochs: ``competing_epochs(config)`` -> the 0-based epochs whose model may become ``best.ckpt``.
    """

    table: Mapping = field(default_factory=dict)
    unread: Mapping[str, str] = field(default_factory=dict)
    validation_metrics: tuple[str, ...] = ('val_loss',)
    check: Callable | None = None
    competing_epochs: Callable | None = None


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: the lower-case key (OpenSTL's ``method_maps`` and ``--method`` spelling, e.g. ``'shrvqvae'``).
        method_class: the LightningModule, built as OpenSTL builds methods.
        display_name: how tables and figures name it (e.g. ``'S-HR-VQVAE'``).
        config_stem: its config files are ``configs/<dataname>/<config_stem>*.py``.
        frame_input: its model maps the input frames ``(B, T_in, C, H, W)`` alone to the prediction, so FLOPs
            and throughput are measured on them.
        ddp_strategy: the Lightning strategy on several devices.
        key_sources: the classes whose constructor parameters (or dataclass fields) are its config keys.
        keys: the method's key table and checks (:class:`MethodKeys`).
    """

    name: str
    method_class: type
    display_name: str
    config_stem: str
    frame_input: bool = True
    ddp_strategy: str = 'ddp'
    key_sources: tuple[type, ...] = ()
    keys: MethodKeys | None = None

    @property
    def config_keys(self) -> frozenset[str]:
        """The method's own config keys (the runner's and the datasets' keys come on top)."""
        return frozenset().union(*(constructor_keys(source) for source in self.key_sources))

    @property
    def defaults(self) -> dict:
        """The method's own default of each of its keys that has one (they replace the runner's OpenSTL
        defaults for this method, e.g. S-HR-VQVAE's lr 3e-4 and constant schedule)."""
        values = {}
        for source in self.key_sources:
            values.update(constructor_defaults(source))
        return values

    def is_named(self, name: str | None) -> bool:
        """Whether ``name`` (any case) is this method's."""
        return str(name or '').lower() == self.name


def register_method(name: str, method_class: type, *, display_name: str, config_stem: str,
                    frame_input: bool = True, ddp_strategy: str = 'ddp', key_sources: tuple[type, ...] = (),
                    keys: MethodKeys | None = None) -> MethodSpec:
    """Register a method under ``name`` (see :class:`MethodSpec` for the facts) and return its spec.

    OpenSTL learns about it when :func:`openstl_hrvq.openstl_bridge.register` runs: on ``import openstl_hrvq``
    for the methods registered while the package is imported, on a later call for any registered after.
    """
    key = name.lower()
    if key in _METHODS:
        raise ValueError(f'A method named {key!r} is registered already ({_METHODS[key].method_class.__name__}).')
    spec = MethodSpec(key, method_class, display_name, config_stem, frame_input, ddp_strategy, tuple(key_sources),
                      keys)
    _METHODS[key] = spec
    return spec


def unregister_method(name: str) -> None:
    """Forget the method ``name`` (any case)."""
    _METHODS.pop(name.lower(), None)


def find_method(name: str | None) -> MethodSpec | None:
    """The registered method called ``name`` (any case), or None."""
    return _METHODS.get(str(name or '').lower())


def registered_methods() -> tuple[MethodSpec, ...]:
    """Every registered method, in registration order."""
    return tuple(_METHODS.values())
