"""Synthetic and scikit-learn datasets, before splitting and scaling.

Moons and circles are drawn here in NumPy with the same random draws as scikit-learn's
generators (so the tutorials' arrays come out bit for bit) without the second or so that
importing scikit-learn costs every process of a sweep; blobs and digits still use it.

Each generator takes its own parameters (the `dataset.*` config keys) plus the run's
`seed`, and returns a `Generated` record. A `random_state` of None means "use the run
seed", so a sweep over `seed` also varies the data unless the config pins it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from mlplab.data.checks import (
    check_bool,
    check_int,
    check_random_state_seed,
    check_real,
    check_seed,
)
from mlplab.errors import ConfigError


class Generated(NamedTuple):
    X: np.ndarray          # (n, features) float64
    y: np.ndarray          # (n, targets) float64 for regression, (n,) int64 labels otherwise
    task: str
    n_classes: int | None
    info: dict


def _classes(X, y, n_classes: int, info: dict) -> Generated:
    y = np.ascontiguousarray(y, dtype=np.int64)
    task = "binary" if n_classes == 2 else "multiclass"
    return Generated(np.ascontiguousarray(X, dtype=np.float64), y, task, n_classes, info)


def sum_diff(*, seed: int, n_samples=10000, low=0.0, high=100.0, legacy=False,
             random_state=None) -> Generated:
    """Inputs a, b ~ U[low, high); targets a+b, a-b, |a-b| (the edenau regression).

    With `legacy`, this seeds NumPy's global stream with the run seed and draws
    `np.random.rand(2, n) * (high - low) + low`: for [0, 100) these are the very values of
    `np.random.seed(seed); np.random.rand(2, n) * 100`. The global stream is left where
    the draw ended, so a model initialised next with `rng="legacy"` continues it exactly
    as the tutorial does (data first, then weights). Otherwise a private
    `np.random.default_rng(random_state)` is used and the global stream is untouched.
    """
    n = check_int("dataset.n_samples", n_samples)
    low = check_real("dataset.low", low)
    high = check_real("dataset.high", high)
    if not high > low:
        raise ConfigError(f"dataset.high: must be greater than dataset.low ({low}), got {high}")
    if check_bool("dataset.legacy", legacy):
        if random_state is not None:
            raise ConfigError("dataset.random_state: must be null when dataset.legacy is true "
                              "(the legacy global stream is seeded with the run `seed`)")
        if not 0 <= seed < 2**32:
            raise ConfigError(f"seed: the legacy NumPy stream needs 0 <= seed < 2**32, "
                              f"got {seed}")
        np.random.seed(seed)  # noqa: NPY002 -- the tutorial's global stream, on purpose
        raw = np.random.rand(2, n) * (high - low) + low  # noqa: NPY002
        stream = f"legacy np.random.seed({seed})"
    else:
        data_seed = check_seed("dataset.random_state", random_state, seed)
        raw = np.random.default_rng(data_seed).random((2, n)) * (high - low) + low
        stream = f"default_rng({data_seed})"
    a, b = raw[0], raw[1]
    targets = np.stack([a + b, a - b, np.abs(a - b)])
    return Generated(np.ascontiguousarray(raw.T), np.ascontiguousarray(targets.T),
                     "regression", None, {"data_stream": stream})


def _legacy_stream(key: str, value, seed: int) -> tuple[int, np.random.RandomState]:
    """The data seed and the `RandomState` scikit-learn's generators draw from for it."""
    data_seed = check_random_state_seed(key, value, seed)
    return data_seed, np.random.RandomState(data_seed)  # noqa: NPY002 -- sklearn's stream


def _two_arcs(outer: tuple, inner: tuple, rng: np.random.RandomState, noise: float):
    """Stack two point sets (label 0 then 1), shuffle them and add Gaussian noise.

    The draws are those of scikit-learn's `make_moons`/`make_circles` with `shuffle=True`:
    one in-place shuffle of `arange(n)`, then one `normal(0, noise, (n, 2))`, so a given
    `random_state` yields the very same arrays without importing scikit-learn.
    """
    X = np.column_stack([np.concatenate([outer[0], inner[0]]),
                         np.concatenate([outer[1], inner[1]])])
    y = np.concatenate([np.zeros(len(outer[0]), np.int64), np.ones(len(inner[0]), np.int64)])
    order = np.arange(len(y))
    rng.shuffle(order)
    X, y = X[order], y[order]
    X += rng.normal(scale=noise, size=X.shape)
    return X, y


def circles(*, seed: int, n_samples=1000, noise=0.1, factor=0.3, random_state=None):
    """Two concentric circles, as scikit-learn's `make_circles` draws them.

    Half the points (rounded down) lie evenly on the unit circle, the rest on a circle of
    radius `factor`; both start at angle 0 and leave out 2 pi.
    """
    factor = check_real("dataset.factor", factor)
    if not 0 < factor < 1:
        raise ConfigError(f"dataset.factor: expected a number in (0, 1), got {factor}")
    n = check_int("dataset.n_samples", n_samples)
    noise = check_real("dataset.noise", noise, minimum=0)
    data_seed, rng = _legacy_stream("dataset.random_state", random_state, seed)
    n_out = n // 2
    outer = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    inner = np.linspace(0, 2 * np.pi, n - n_out, endpoint=False)
    X, y = _two_arcs((np.cos(outer), np.sin(outer)),
                     (np.cos(inner) * factor, np.sin(inner) * factor), rng, noise)
    return _classes(X, y, 2, {"random_state": data_seed})


def moons(*, seed: int, n_samples=1000, noise=0.2, random_state=100):
    """Two interleaving half circles, as scikit-learn's `make_moons` draws them.

    The upper arc (label 0, half the points rounded down) is the unit half circle from
    angle 0 to pi; the lower one is it mirrored and shifted to (1 - cos t, 0.5 - sin t).
    """
    n = check_int("dataset.n_samples", n_samples)
    noise = check_real("dataset.noise", noise, minimum=0)
    data_seed, rng = _legacy_stream("dataset.random_state", random_state, seed)
    n_out = n // 2
    outer = np.linspace(0, np.pi, n_out)
    inner = np.linspace(0, np.pi, n - n_out)
    X, y = _two_arcs((np.cos(outer), np.sin(outer)),
                     (1 - np.cos(inner), 1 - np.sin(inner) - 0.5), rng, noise)
    return _classes(X, y, 2, {"random_state": data_seed})


def blobs(*, seed: int, n_samples=1000, noise=1.0, centers=3, n_features=2, random_state=None):
    """Gaussian blobs (scikit-learn `make_blobs`); `noise` is the cluster standard deviation."""
    from sklearn.datasets import make_blobs

    data_seed = check_seed("dataset.random_state", random_state, seed)
    centers = check_int("dataset.centers", centers, minimum=2)
    X, y = make_blobs(n_samples=check_int("dataset.n_samples", n_samples),
                      n_features=check_int("dataset.n_features", n_features),
                      centers=centers, cluster_std=check_real("dataset.noise", noise, minimum=0),
                      random_state=data_seed)
    return _classes(X, y, centers, {"random_state": data_seed})


def xor(*, seed: int, n_samples=1000, noise=0.1, random_state=None):
    """Points uniform in [-1, 1)^2, label 1 where the signs of x0 and x1 differ.

    Labels come from the clean points; Gaussian `noise` is added afterwards, so larger
    noise blurs the quadrant borders as `noise` does for scikit-learn's generators.
    """
    n = check_int("dataset.n_samples", n_samples)
    noise = check_real("dataset.noise", noise, minimum=0)
    data_seed = check_seed("dataset.random_state", random_state, seed)
    rng = np.random.default_rng(data_seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = (X[:, 0] > 0) != (X[:, 1] > 0)
    X += noise * rng.standard_normal(X.shape)
    return _classes(X, y, 2, {"random_state": data_seed})


def spirals(*, seed: int, n_samples=1000, noise=0.05, n_classes=2, turns=1.5,
            random_state=None):
    """`n_classes` interleaved spiral arms, each turning `turns` times around the origin.

    Arm k at position t in [0, 1] sits at radius 0.05 + 0.95 t and angle
    2 pi (turns t + k / n_classes); Gaussian `noise` is added to both coordinates.
    Samples are shuffled so the rows are not grouped by class.
    """
    n = check_int("dataset.n_samples", n_samples)
    k_classes = check_int("dataset.n_classes", n_classes, minimum=2)
    turns = check_real("dataset.turns", turns, minimum=0)
    noise = check_real("dataset.noise", noise, minimum=0)
    if n < k_classes:
        raise ConfigError(f"dataset.n_samples: need at least one sample per arm "
                          f"({k_classes}), got {n}")
    data_seed = check_seed("dataset.random_state", random_state, seed)
    rng = np.random.default_rng(data_seed)
    labels = np.arange(n) % k_classes
    t = rng.random(n)
    radius = 0.05 + 0.95 * t
    angle = 2 * math.pi * (turns * t + labels / k_classes)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n)
    return _classes(X[order], labels[order], k_classes, {"random_state": data_seed})


def digits(*, seed: int):
    """scikit-learn's 8x8 handwritten digits (1797 samples, pixel values 0..16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _classes(bunch.data, bunch.target, 10, {})
