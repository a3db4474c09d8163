"""Validation of dataset parameters and arrays.

Every message is one line that starts with the key the user typed (callers pass the full
dotted key, e.g. `dataset.n_samples`) or the file/array at fault and says what would be
valid, because the CLI prints it verbatim. The rules the data shares with the rest of the
engine and the config (the float dtypes, the seed's range) come from `mlplab.constraints`.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import FLOAT_DTYPE, SEED, check, is_integer, is_real
from mlplab.errors import ConfigError, DataError, choices


def check_int(key: str, value, *, minimum: int = 1) -> int:
    """An integer >= minimum (bools are rejected: `True` is not a sample count)."""
    if not is_integer(value):
        raise ConfigError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    return int(value)


def check_optional_int(key: str, value, *, minimum: int = 1) -> int | None:
    return None if value is None else check_int(key, value, minimum=minimum)


def check_real(key: str, value, *, minimum: float | None = None) -> float:
    """A finite real number, optionally >= minimum."""
    if not is_real(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    return float(value)


def check_fraction(key: str, value, *, optional: bool = False) -> float | None:
    """A fraction strictly between 0 and 1 (a split size); None allowed when optional."""
    if value is None and optional:
        return None
    if not is_real(value) or not 0 < value < 1:
        valid = "null or a number" if optional else "a number"
        raise ConfigError(f"{key}: expected {valid} in (0, 1), got {value!r}")
    return float(value)


def check_seed(key: str, value, default: int) -> int:
    """A seed: a non-negative integer, or None meaning the run's seed."""
    if value is None:
        value = default
    return check_int(key, value, minimum=0)


def check_random_state_seed(key: str, value, default: int) -> int:
    """`check_seed` for a seed that goes to NumPy's `RandomState` (scikit-learn's draws),
    which takes seeds below 2**32 only."""
    seed = check_seed(key, value, default)
    if not SEED.accepts(seed):
        raise ConfigError(f"{key}: a seed below 2**32 is needed here (NumPy's RandomState), "
                          f"got {seed}; null means the run's `seed`")
    return seed


def check_choice(key: str, value, valid) -> str:
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}; valid choices: {choices(valid)}")
    return value


def check_bool(key: str, value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return bool(value)


def check_dtype(value) -> np.dtype:
    """`float32` or `float64` (the engine keeps one float dtype end to end)."""
    return check("trainer.dtype", value, FLOAT_DTYPE)


def check_finite(where: str, array: np.ndarray) -> None:
    """Refuse NaN/inf: they would silently turn every loss and gradient into NaN."""
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{where} contains {bad} NaN or infinite value(s); "
                        "data must be finite")
