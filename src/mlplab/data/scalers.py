"""Feature/target scalers, fitted on the training part only, and one-hot encoding.

Statistics come from the training split alone so nothing about the test split leaks into
training. Each scaler has `fit`, `transform`, `inverse_transform` and a `state_dict` of
plain arrays so a saved model can apply the same scaling at prediction time.
"""

from __future__ import annotations

import numpy as np

from mlplab.data.checks import check_finite
from mlplab.errors import ConfigError, DataError, choices

# Columns per block when computing per-feature statistics (bounds the temporary copy).
_STAT_BLOCK = 64


def _column_stats(X: np.ndarray, stat) -> np.ndarray:
    """Apply `stat(block, axis=1)` to each column of sample-major X, in float64.

    Each column is reduced as one contiguous 1-D run, exactly as `np.mean(column)` does,
    so results agree to the last bit with per-feature statistics computed on a
    feature-major array (the tutorials' layout); a reduction over axis 0 of the
    sample-major array would sum in another order.
    """
    out = np.empty(X.shape[1], dtype=np.float64)
    for start in range(0, X.shape[1], _STAT_BLOCK):
        block = np.ascontiguousarray(X[:, start:start + _STAT_BLOCK].T, dtype=np.float64)
        out[start:start + _STAT_BLOCK] = stat(block, axis=1)
    return out


def _require_2d(X: np.ndarray, who: str) -> None:
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"{who}: expected a non-empty (n_samples, n_features) array, "
                        f"got shape {X.shape}")


class Scaler:
    """x -> (x - shift) / scale, the one form every scaler here takes.

    `shift` is None for pure rescaling (no subtraction pass); `kind` names the scaler in
    configs and state dicts. Subclasses only decide, in `fit`, what shift and scale are.
    """

    kind = "base"

    def __init__(self, shift=None, scale=None):
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, X: np.ndarray) -> Scaler:
        raise NotImplementedError

    def transform(self, X: np.ndarray, *, dtype=None, inplace: bool = False) -> np.ndarray:
        """Scaled X as a new array of `dtype` (default: X's float dtype, else float64).

        The conversion and the first scaling step share one pass, so uint8 pixels become
        scaled float32 without an intermediate copy. With `inplace`, a float X of the
        requested dtype is overwritten instead.
        """
        X = np.asarray(X)
        dtype = _float_dtype(X) if dtype is None else np.dtype(dtype)
        out = X if inplace and X.dtype == dtype else np.empty(X.shape, dtype)
        if self.shift is not None:
            X = np.subtract(X, self.shift.astype(dtype), out=out)
        return np.divide(X, self.scale.astype(dtype), out=out)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        dtype = _float_dtype(X)
        out = np.multiply(X, self.scale.astype(dtype), out=np.empty(X.shape, dtype))
        if self.shift is not None:
            np.add(out, self.shift.astype(dtype), out=out)
        return out

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"kind": np.array(self.kind), "scale": self.scale}
        if self.shift is not None:
            state["shift"] = self.shift
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shift={self.shift}, scale={self.scale})"


def _float_dtype(X: np.ndarray) -> np.dtype:
    return X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)


class Standardizer(Scaler):
    """(x - mean) / std per feature, ddof=0; a constant feature gets std 1 (maps to 0)."""

    kind = "standardize"

    def fit(self, X):
        X = np.asarray(X)
        _require_2d(X, "standardize")
        check_finite("standardize: the training data", X)
        self.shift = _column_stats(X, np.mean)
        std = _column_stats(X, np.std)
        self.scale = np.where(std > 0, std, 1.0)
        return self

    @property
    def mean(self):
        return self.shift

    @property
    def std(self):
        return self.scale


class MaxScaler(Scaler):
    """x / max(train), one global maximum: the arask MNIST preprocessing (x / np.max(x))."""

    kind = "max"

    def fit(self, X):
        X = np.asarray(X)
        _require_2d(X, "max scaling")
        peak = float(np.max(X))
        if not np.isfinite(peak) or peak <= 0:
            raise DataError(f"max scaling: training data maximum is {peak}; "
                            "it must be finite and positive")
        self.scale = np.asarray(peak)
        return self


class ConstantScaler(Scaler):
    """x / a fixed constant, e.g. 255 for 8-bit pixels; `fit` learns nothing."""

    kind = "constant"

    def __init__(self, scale=255.0, shift=None):
        super().__init__(shift, scale)

    def fit(self, X):
        return self


class MinMaxScaler(Scaler):
    """(x - min) / (max - min) per feature into [0, 1]; a constant feature maps to 0."""

    kind = "minmax"

    def fit(self, X):
        X = np.asarray(X)
        _require_2d(X, "minmax scaling")
        check_finite("minmax scaling: the training data", X)
        self.shift = X.min(axis=0).astype(np.float64)
        span = X.max(axis=0).astype(np.float64) - self.shift
        self.scale = np.where(span > 0, span, 1.0)
        return self

    @property
    def minimum(self):
        return self.shift

    @property
    def span(self):
        return self.scale


# Names users type for `dataset.scale` / `dataset.target_scale`.
SCALE_CHOICES = ("none", "standardize", "max", "minmax", "div255")


def make_scaler(name: str, key: str = "dataset.scale") -> Scaler | None:
    """A fresh, unfitted scaler for a config name (None for 'none')."""
    if name == "none":
        return None
    if name == "standardize":
        return Standardizer()
    if name == "max":
        return MaxScaler()
    if name == "minmax":
        return MinMaxScaler()
    if name == "div255":
        return ConstantScaler(255.0)
    raise ConfigError(f"{key}: unknown scaling {name!r}; valid choices: {choices(SCALE_CHOICES)}")


_KINDS = {cls.kind: cls for cls in (Standardizer, MaxScaler, ConstantScaler, MinMaxScaler)}


def scaler_from_state(state: dict) -> Scaler:
    """Rebuild a fitted scaler from `Scaler.state_dict()` (e.g. read back from an .npz)."""
    kind = str(np.asarray(state["kind"]))
    if kind not in _KINDS:
        raise DataError(f"scaler state: unknown kind {kind!r}; valid choices: {choices(_KINDS)}")
    return _KINDS[kind](**{k: np.asarray(v) for k, v in state.items() if k != "kind"})

