"""Name lookup, keyword checking and dtype resolution shared by the engine's factories.

Every factory (`get_activation`, `get_loss`, ...) turns a name typed in a config file into an
object, so every one of them must fail the same way on a typo: one `ConfigError` line that
names the bad value and lists what would have been valid.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import numpy as np

from mlplab.errors import ConfigError, choices

DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype) -> np.dtype:
    """Accept "float32"/"float64" (or the numpy types) and nothing else."""
    for name, kind in DTYPES.items():
        if isinstance(dtype, str) and dtype == name:
            return np.dtype(kind)
        if not isinstance(dtype, str) and dtype in (kind, np.dtype(kind)):
            return np.dtype(kind)
    raise ConfigError(f"dtype: unknown dtype {dtype!r}; valid choices: {choices(DTYPES)}")


def lookup(registry: Mapping[str, object], name, what: str):
    """Return registry[name] or raise a one-line ConfigError listing the valid names."""
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{what}: unknown {what} {name!r}; valid choices: {choices(registry)}")
    return registry[name]


def check_kwargs(factory: Callable, kwargs: Mapping, what: str, name: str,
                 skip: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> None:
    """Reject keyword arguments the factory does not take, before calling it.

    Config files pass hyperparameters by keyword, so a misspelt key (`betas1`) would
    otherwise surface as a TypeError traceback instead of a clear message.
    """
    params = inspect.signature(factory).parameters
    valid = [p for p in params if p not in ("self", *skip)
             and params[p].kind in (params[p].KEYWORD_ONLY, params[p].POSITIONAL_OR_KEYWORD)]
    valid += [p for p in extra if p not in valid]
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        raise ConfigError(
            f"{what}: {name!r} has no parameter {unknown[0]!r}; "
            f"valid parameters: {choices(valid) or '(none)'}"
        )


def require(condition: bool, key: str, value, rule: str) -> None:
    """Raise a one-line ConfigError `key: invalid value V; must be RULE` unless condition."""
    if not condition:
        raise ConfigError(f"{key}: invalid value {value!r}; must be {rule}")


def positive_number(key: str, value, *, allow_zero: bool = False) -> float:
    """Validate a real scalar hyperparameter (> 0, or >= 0) and return it as a Python float.

    Returning a Python float matters: NumPy 2 treats Python scalars as "weak", so
    multiplying a float32 array by one keeps float32, whereas a np.float64 would upcast.
    """
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    require(ok, key, value, "a finite number " + (">= 0" if allow_zero else "> 0"))
    return float(value)


class Named:
    """Mixin for registry objects: `name` is the registry key, `params()` the constructor
    arguments, and the repr reads like the call that builds the object."""

    name = "object"

    def params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})"
