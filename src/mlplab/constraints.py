"""The values a parameter accepts, declared once and checked by one function.

Each engine component (an optimizer, a schedule, an initializer, an activation, the
trainer, early stopping) declares the rule of every parameter in a `constraints` mapping
next to its code, and checks its arguments with `check`. The config validation reads the
same mapping for the component a config names and checks the config's values with it,
under the config's keys. A range or a list of choices therefore exists in one place, and
the config and the engine cannot disagree about it (scikit-learn's
`_parameter_constraints` is the model: declared per component, checked by one validator).

A failed check is one `ConstraintError` line, `NAME: invalid value V; must be RULE` (for a
list of choices: `NAME: unknown value V; valid choices: A, B`), which the CLI prints as is.

The engine imports this module, so it is plain Python and NumPy and imports nothing of
mlplab but `errors`. It is one module, longer than most, because it is the whole
vocabulary of rules: the import test pins it as a leaf, and a reader finds every kind of
rule, the one check and the rules shared across packages in one place.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np

from mlplab.errors import ConfigError, choices


def is_integer(value) -> bool:
    """A Python or NumPy integer; not a bool (`True` is no count of anything)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_real(value) -> bool:
    """A finite Python or NumPy real number; not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
            and math.isfinite(value))


def _either(parts: list[str]) -> str:
    """["a", "b", "c"] -> "a, b or c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _show(value) -> str:
    """A choice as a user types it in YAML (true/false/null), other values as repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Constraint:
    """One rule. `accepts(value)` says whether a value obeys it, `convert(value)` returns
    the value the engine keeps (e.g. a Python float), `describe()` reads as the end of
    "must be ..."."""

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def convert(self, value):
        return value

    def parts(self, plural: bool = False) -> list[str]:
        """The alternatives this rule allows, as phrases (joined by `describe`)."""
        raise NotImplementedError

    def describe(self, plural: bool = False) -> str:
        return _either(self.parts(plural))

    def message(self, name: str, value, noun: str | None = None) -> str:
        return f"{name}: invalid value {value!r}; must be {self.describe()}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


class Interval(Constraint):
    """A number between two bounds, either of which may be missing (None).

    `kind` is `int` (any integer) or `float` (any finite real, integers included);
    `closed` says which bounds belong to the interval: "left", "right", "both" or
    "neither", as in scikit-learn's `Interval`.
    """

    def __init__(self, kind: type, low=None, high=None, *, closed: str = "left"):
        if kind not in (int, float) or closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"Interval({kind!r}, closed={closed!r})")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        if not (is_integer(value) if self.kind is int else is_real(value)):
            return False
        if self.low is not None and (value < self.low or (
                value == self.low and self.closed in ("right", "neither"))):
            return False
        return self.high is None or value < self.high or (
            value == self.high and self.closed in ("right", "both"))

    def convert(self, value):
        # A Python float, never a np.float64: NumPy 2 treats Python scalars as "weak", so a
        # float32 array times one stays float32, whereas a np.float64 would upcast it.
        return int(value) if self.kind is int else float(value)

    @staticmethod
    def _bound(value) -> str:
        if isinstance(value, int) and value >= 2**16 and value & (value - 1) == 0:
            return f"2**{value.bit_length() - 1}"  # 2**32 reads better than 4294967296
        return str(value)

    def parts(self, plural=False):
        integer = self.kind is int
        what = ("integers" if plural else "an integer") if integer else (
            "numbers" if plural else "a number")
        low, high = self.low, self.high
        left_closed = self.closed in ("left", "both")
        right_closed = self.closed in ("right", "both")
        if low is not None and high is not None:
            return [f"{what} in {'[' if left_closed else '('}{self._bound(low)}, "
                    f"{self._bound(high)}{']' if right_closed else ')'}"]
        if not integer:  # a half-open range says nothing about inf and NaN: say it
            what = "finite numbers" if plural else "a finite number"
        if low is not None:
            return [f"{what} {'>=' if left_closed else '>'} {self._bound(low)}"]
        if high is not None:
            return [f"{what} {'<=' if right_closed else '<'} {self._bound(high)}"]
        return [what]


class Choice(Constraint):
    """One of a fixed set of values. `noun` names what the values are in the engine's
    messages ("unknown mode 'up'"); the config's messages say "unknown value"."""

    def __init__(self, values, noun: str = "value"):
        self.values = tuple(values)
        self.noun = noun

    def accepts(self, value) -> bool:
        if isinstance(value, np.ndarray):
            return False
        # 1 == True in Python; a flag's choices must not accept a number, nor the reverse
        return any(value == option and isinstance(value, bool) == isinstance(option, bool)
                   for option in self.values)

    def parts(self, plural=False):
        shown = [repr(v) if isinstance(v, str) else _show(v) for v in self.values]
        return [shown[0]] if len(shown) == 1 else ["one of " + ", ".join(shown)]

    def message(self, name, value, noun=None):
        valid = choices(_show(v) for v in self.values)
        return f"{name}: unknown {noun or self.noun} {value!r}; valid choices: {valid}"


class DType(Choice):
    """A floating-point dtype, given by name ("float32") or as a NumPy dtype or type;
    `convert` returns the `np.dtype`."""

    def __init__(self, names):
        super().__init__(names, noun="dtype")

    @staticmethod
    def _name(value) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, np.dtype | type):
            try:
                return np.dtype(value).name
            except TypeError:
                return None
        return None

    def accepts(self, value) -> bool:
        return self._name(value) in self.values

    def convert(self, value):
        return np.dtype(self._name(value))


class AnyOf(Constraint):
    """Any value one of `options` accepts (e.g. "auto" or an integer >= 1)."""

    def __init__(self, *options: Constraint):
        self.options = options

    def _first(self, value) -> Constraint | None:
        return next((option for option in self.options if option.accepts(value)), None)

    def accepts(self, value) -> bool:
        return self._first(value) is not None

    def convert(self, value):
        return self._first(value).convert(value)

    def parts(self, plural=False):
        return [part for option in self.options for part in option.parts(plural)]


class Nullable(AnyOf):
    """None (null in a config) or a value `inner` accepts."""

    def __init__(self, inner: Constraint):
        super().__init__(inner)
        self.inner = inner

    def accepts(self, value) -> bool:
        return value is None or self.inner.accepts(value)

    def convert(self, value):
        return None if value is None else self.inner.convert(value)

    def parts(self, plural=False):
        return [*self.inner.parts(plural), "null"]


class ListOf(Constraint):
    """A list (or tuple) whose items all obey `item`; `length` fixes its length and
    `example` is shown after the rule."""

    _COUNTS = {1: "one", 2: "two", 3: "three"}

    def __init__(self, item: Constraint, length: int | None = None, example: str | None = None):
        self.item, self.length, self.example = item, length, example

    def accepts(self, value) -> bool:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            return False
        return (self.length is None or len(value) == self.length) and all(
            self.item.accepts(v) for v in value)

    def convert(self, value):
        return [self.item.convert(v) for v in value]

    def parts(self, plural=False):
        items = self.item.describe(plural=True)
        text = (f"a list of {items}" if self.length is None
                else f"{self._COUNTS.get(self.length, self.length)} {items}")
        return [text + (f", e.g. {self.example}" if self.example else "")]

    def message(self, name, value, noun=None):
        listed = isinstance(value, Sequence) and not isinstance(value, str | bytes)
        if listed and isinstance(self.item, Choice) and self.length is None:
            # a list of names: say which one is unknown, and list the valid ones
            bad = next(v for v in value if not self.item.accepts(v))
            return self.item.message(name, bad, noun)
        shown = list(value) if listed else value
        return f"{name}: invalid value {shown!r}; must be {self.describe()}"


class ConstraintError(ConfigError):
    """A value broke its rule; `name`, `value` and `constraint` say which."""

    def __init__(self, name: str, value, constraint: Constraint, noun: str | None = None):
        super().__init__(constraint.message(name, value, noun))
        self.name, self.value, self.constraint = name, value, constraint


def check(name: str, value, constraint: Constraint, *, noun: str | None = None):
    """Return `value` converted by `constraint`, or raise a one-line ConstraintError naming
    `name`. `noun` overrides what a list of choices calls its values ("value" in the
    config's messages, "dtype" or "mode" in the engine's)."""
    if not constraint.accepts(value):
        raise ConstraintError(name, value, constraint, noun)
    return constraint.convert(value)


def check_keywords(factory: Callable, kwargs: Mapping, what: str, name: str,
                   skip: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> None:
    """Reject keyword arguments `factory` does not take, before calling it.

    Config files pass hyperparameters by keyword, so a misspelt key (`betas1`) would
    otherwise surface as a TypeError traceback instead of a clear message.
    """
    params = inspect.signature(factory).parameters
    valid = [p for p in params if p not in ("self", *skip)
             and params[p].kind in (params[p].KEYWORD_ONLY, params[p].POSITIONAL_OR_KEYWORD)]
    valid += [p for p in extra if p not in valid]
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        raise ConfigError(f"{what}: {name!r} has no parameter {unknown[0]!r}; "
                          f"valid parameters: {choices(valid) or '(none)'}")


def fail(name: str, value, rule: str):
    """Raise the one-line error of a rule that ties parameters together (it has no
    Constraint object: "smaller than epochs (100)")."""
    raise ConfigError(f"{name}: invalid value {value!r}; must be {rule}")


class Constrained:
    """Mixin of a component that declares its parameters' rules.

    `constraints` maps parameter names to their rules; `prefix` is the component family
    the engine's messages name (`optimizer` -> "optimizer.momentum: ..."). Rules that tie
    several parameters together go in `check_together`, which both the engine (with its
    arguments) and the config validation (with the config's values) call.
    """

    prefix: ClassVar[str] = ""
    constraints: ClassVar[Mapping[str, Constraint]] = {}

    @classmethod
    def engine_key(cls, name: str) -> str:
        return f"{cls.prefix}.{name}" if cls.prefix else name

    @classmethod
    def checked(cls, name: str, value):
        """`value` of parameter `name`, checked and converted (engine-side)."""
        return check(cls.engine_key(name), value, cls.constraints[name])

    @classmethod
    def check_together(cls, values: Mapping, key: Callable[[str], str]) -> None:
        """Raise unless the parameters agree with each other; `values` holds every
        parameter of the constructor (defaults filled in), `key(name)` is what a message
        calls parameter `name`. Nothing to check by default."""

    @classmethod
    def defaults(cls) -> dict:
        """The constructor's keyword defaults (what a config that omits a key gets)."""
        return {name: p.default for name, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}

    @classmethod
    def check_params(cls, values: Mapping, key: Callable[[str], str] | None = None) -> dict:
        """Check every declared parameter in `values`, then the rules between parameters;
        return the checked values. `key` turns a parameter name into the name a message
        shows (a config key, and then the config's wording; default: the engine's
        `prefix.name`)."""
        noun = None if key is None else "value"
        key = key or cls.engine_key
        checked = dict(values)
        for name, value in values.items():
            if name in cls.constraints:
                checked[name] = check(key(name), value, cls.constraints[name], noun=noun)
        cls.check_together({**cls.defaults(), **checked}, key)
        return checked


# ------------------------------------------------------------------ rules of several packages
# Rules that the engine's packages share with each other (nn and data cannot import each
# other), and with the config.

POSITIVE = Interval(float, 0, closed="neither")
NON_NEGATIVE = Interval(float, 0)

# The engine keeps one float dtype end to end: the model's, the data's.
FLOAT_DTYPE = DType(("float32", "float64"))

# Which way a monitored metric improves (trainer, early stopping, reduce_on_plateau).
MODE = Choice(("min", "max"), noun="mode")

# The run's seed reaches NumPy's RandomState (the legacy global stream, scikit-learn's
# generators), which takes seeds below 2**32 only.
SEED = Interval(int, 0, 2**32, closed="left")

# ------------------------------------------------------------------ sweepers and launchers
# Settings under `hydra.sweeper` and `hydra.launcher` (`mlplab.config.sweep_settings` checks
# them before a sweep's parent run exists; the sweepers and launchers would fail later).

COUNT = Interval(int, 1)
NON_NEGATIVE_COUNT = Interval(int, 0)
# joblib's n_jobs: a number of worker processes, or a negative count from the number of
# cores (-1: one per core); 0 means nothing to joblib.
WORKER_COUNT = AnyOf(Interval(int, 1), Interval(int, None, 0, closed="neither"))
# Launcher settings by the launcher class (the tail of `hydra.launcher._target_`); keys are
# dotted paths under `hydra.launcher`.
LAUNCHER_RULES = {
    "JoblibLauncher": {"n_jobs": WORKER_COUNT},
    "LocalParallelLauncher": {"n_jobs": WORKER_COUNT},
    "RayLauncher": {"ray.remote.num_cpus": POSITIVE, "ray.remote.max_calls": NON_NEGATIVE_COUNT,
                    "ray.remote.max_retries": AnyOf(NON_NEGATIVE_COUNT,
                                                    Interval(int, -1, -1, closed="both"))},
    "LocalLauncher": {"timeout_min": COUNT, "nodes": COUNT, "tasks_per_node": COUNT,
                      "cpus_per_task": Nullable(COUNT)},
}
LAUNCHER_RULES["SlurmLauncher"] = {**LAUNCHER_RULES["LocalLauncher"], "array_parallelism": COUNT,
                                   "max_num_timeout": NON_NEGATIVE_COUNT}
LAUNCHER_RULES["MlplabSlurmLauncher"] = LAUNCHER_RULES["SlurmLauncher"]
