"""The config-key table: for every key, its accepted values, one line of meaning and what ``--resume`` does with it.

One table is the single source of truth for a key: the runner's check of a resolved config
(:func:`openstl_hrvq.api.validation.check_values`), a method's own check of the keys it is built with, the
``--resume`` comparison with the run's record (:mod:`openstl_hrvq.api.resume`) and ``tools/train.py --list-keys``
all read it. Defaults are not written here: they are read from the code that uses the key (OpenSTL's runner
defaults, a method's dataclass fields and constructor arguments), so the table cannot disagree with it.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, Mapping

from openstl_hrvq.errors import ConfigError

#: What ``--resume`` does with a key whose value differs from the run's record.
SHAPE = 'shape'          # it changes the weights' shapes or meaning: refused, naming the key
RESTORED = 'restored'    # it changes what the restored optimizer or schedule is: refused, naming the key
APPLIED = 'applied'      # training reads it afresh (the method applies it to the restored optimizer)
FREE = 'free'            # where and how the run happens, the budget, the test: taken as given
ON_RESUME = {SHAPE: 'refused (weights)', RESTORED: 'refused (optimizer)', APPLIED: 'applied', FREE: 'free'}


@dataclass(frozen=True)
class Rule:
    """The values a key accepts: an ``int``, a ``float`` (any real number) or a ``bool`` in ``[low, high]``
    (``low`` excluded when ``above``), one of ``choices``, and ``None`` when ``optional``. ``kind=None``
    accepts anything (a list or a path that another check looks at)."""

    kind: type | None = int
    low: float | None = None
    high: float | None = None
    above: bool = False
    optional: bool = False
    choices: tuple = ()

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional or self.kind is None
        if self.choices:
            return value in self.choices
        if self.kind is None:
            return True
        if self.kind is str:
            return isinstance(value, str)
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
        elif self.kind is None:
            text = 'any value'
        elif self.kind is bool:
            text = 'True or False'
        elif self.kind is str:
            text = 'a string'
        else:
            text = 'an integer' if self.kind is int else 'a number'
            if self.low is not None and self.high is not None:
                text += f' in {"(" if self.above else "["}{self.low}, {self.high}]'
            elif self.low is not None:
                text += f' {">" if self.above else ">="} {self.low}'
        return text + (' or None' if self.optional else '')


ANY = Rule(None)
FLAG = Rule(bool)
TEXT = Rule(str)
COUNT = Rule(int, 1)
POSITIVE = Rule(float, 0, above=True)
NON_NEGATIVE = Rule(float, 0)


@dataclass(frozen=True)
class Key:
    """One config key: ``meaning`` (one line), accepted values (``rule``) and what ``--resume`` does with a
    changed value (``resume``: :data:`SHAPE`, :data:`RESTORED`, :data:`APPLIED` or :data:`FREE`)."""

    meaning: str
    rule: Rule = ANY
    resume: str = FREE


def fail(key: str, value, expected: str) -> None:
    raise ConfigError(f'Config key {key!r} must be {expected}, got {value!r}: fix it in the config file, '
                      f'the command line or --cfg-options.')


def check_table(values: Mapping, table: Mapping[str, Key], keys: Iterable[str] | None = None) -> None:
    """Raise one :class:`ConfigError` for the first of ``keys`` (default: all in ``values``) outside its rule."""
    for key in (values if keys is None else keys):
        if key in table and key in values and not table[key].rule.accepts(values[key]):
            fail(key, values[key], table[key].rule.describe())
