"""Name lookup and dtype resolution shared by the engine's factories.

Every factory (`get_activation`, `get_loss`, ...) turns a name typed in a config file into an
object, so every one of them must fail the same way on a typo: one `ConfigError` line that
names the bad value and lists what would have been valid. The rules of the parameters
themselves are declared on each component (see `mlplab.constraints`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlplab.constraints import FLOAT_DTYPE, check
from mlplab.errors import ConfigError, choices


def resolve_dtype(dtype) -> np.dtype:
    """Accept "float32"/"float64" (or the numpy types) and nothing else."""
    return check("dtype", dtype, FLOAT_DTYPE)


def lookup(registry: Mapping[str, object], name, what: str):
    """Return registry[name] or raise a one-line ConfigError listing the valid names."""
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{what}: unknown {what} {name!r}; valid choices: {choices(registry)}")
    return registry[name]


class Named:
    """Mixin for registry objects: `name` is the registry key, `params()` the constructor
    arguments, and the repr reads like the call that builds the object."""

    name = "object"

    def params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.name}({args})"
