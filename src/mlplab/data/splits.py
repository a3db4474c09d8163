"""Train/test and train/validation splits.

Two modes: `ordered` keeps the head for training and the tail for held-out data (the
edenau split), `shuffled` draws the seeded permutation scikit-learn's
`train_test_split` draws (the Skalski split; computed here in NumPy), or with
`stratify` calls that function to keep the class proportions. Splits are
returned as indices (or slices for `ordered`, which keeps views) so big arrays are copied
once, after splitting.
"""

from __future__ import annotations

import math

import numpy as np

from mlplab.data.checks import check_choice
from mlplab.errors import ConfigError

SPLIT_MODES = ("ordered", "shuffled")


def n_held_out(n: int, fraction: float) -> int:
    """Held-out count: ceil(fraction * n), scikit-learn's rule (0.3 of 10000 -> 3000)."""
    return math.ceil(fraction * n)


def split_indices(n: int, fraction: float, *, mode: str, seed: int, labels=None,
                  stratify: bool = False, key: str = "dataset.test_size"):
    """(keep, held_out) index arrays or slices over n samples.

    `fraction` of the samples are held out. `labels` are needed only for stratification.
    """
    check_choice("dataset.split", mode, SPLIT_MODES)
    n_out = n_held_out(n, fraction)
    if n_out >= n:
        raise ConfigError(f"{key}: {fraction} of {n} samples leaves nothing to train on; "
                          "use a smaller fraction or more samples")
    if mode == "ordered":
        if stratify:
            raise ConfigError("dataset.stratify: stratification needs a shuffled split; "
                              "set dataset.split=shuffled or dataset.stratify=false")
        return slice(0, n - n_out), slice(n - n_out, n)
    if not stratify:
        return shuffled_split(n, n_out, seed)
    from sklearn.model_selection import train_test_split

    try:
        keep, out = train_test_split(np.arange(n), test_size=fraction, random_state=seed,
                                     stratify=labels if stratify else None)
    except ValueError as exc:  # e.g. a class too small to stratify
        raise ConfigError(f"{key}: cannot split {n} samples: {exc}") from None
    return keep, out


def shuffled_split(n: int, n_out: int, seed: int):
    """(keep, held_out) of a seeded shuffle: the draw of scikit-learn's `train_test_split`.

    That function permutes `arange(n)` once with `RandomState(seed)` and holds out the
    first `n_out` positions; doing the same here gives its split without importing it.
    """
    permutation = np.random.RandomState(seed).permutation(n)  # noqa: NPY002
    return permutation[n_out:], permutation[:n_out]


def take(array: np.ndarray, index) -> np.ndarray:
    """array[index] as its own contiguous array (views of slices are copied too)."""
    return np.ascontiguousarray(array[index])
