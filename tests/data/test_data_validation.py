"""Bad dataset parameters: one ConfigError line naming the key and what would be valid."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab.data import DATASETS, load_dataset
from mlplab.data.assemble import assemble
from mlplab.data.generators import Generated
from mlplab.errors import ConfigError, DataError

CASES = [
    ("nope", {}, r"^dataset\.name: unknown dataset 'nope'; valid choices: blobs, circles, "),
    ("moons", {"n_sample": 10}, r"^dataset\.n_sample: unknown key for dataset 'moons'; "
                                r"valid keys: .*n_samples"),
    ("moons", {"n_samples": 0}, r"^dataset\.n_samples: must be >= 1, got 0"),
    ("sum_diff", {"n_samples": -5}, r"^dataset\.n_samples: must be >= 1"),
    ("moons", {"n_samples": 2.5}, r"^dataset\.n_samples: expected an integer"),
    ("moons", {"n_samples": True}, r"^dataset\.n_samples: expected an integer"),
    ("moons", {"test_size": 0}, r"^dataset\.test_size: expected a number in \(0, 1\)"),
    ("circles", {"test_size": 1.0}, r"^dataset\.test_size: expected a number in \(0, 1\)"),
    ("xor", {"test_size": "0.2"}, r"^dataset\.test_size: expected a number in \(0, 1\)"),
    ("xor", {"val_size": 1.5}, r"^dataset\.val_size: expected null or a number in \(0, 1\)"),
    ("xor", {"noise": -0.1}, r"^dataset\.noise: must be >= 0"),
    ("xor", {"noise": float("nan")}, r"^dataset\.noise: expected a finite number"),
    ("blobs", {"split": "random"}, r"^dataset\.split: unknown value 'random'; valid "
                                   r"choices: ordered, shuffled"),
    ("blobs", {"scale": "zscore"}, r"^dataset\.scale: unknown value 'zscore'; valid "
                                   r"choices: div255, max, minmax, none, standardize"),
    ("sum_diff", {"stratify": True}, r"^dataset\.stratify: dataset 'sum_diff' is a "
                                     r"regression task"),
    ("moons", {"split": "ordered", "stratify": True}, r"^dataset\.stratify: .*shuffled"),
    ("moons", {"target_scale": "standardize"}, r"^dataset\.target_scale: unknown key"),
    ("sum_diff", {"low": 5, "high": 5}, r"^dataset\.high: must be greater than "
                                        r"dataset\.low"),
    ("spirals", {"n_classes": 1}, r"^dataset\.n_classes: must be >= 2"),
    ("circles", {"factor": 1.5}, r"^dataset\.factor: expected a number in \(0, 1\)"),
    ("moons", {"random_state": -1}, r"^dataset\.random_state: must be >= 0"),
    ("moons", {"n_samples": 10, "test_size": 0.5, "val_size": 0.9},
     r"^dataset\.val_size: 0\.9 of 5 samples leaves nothing to train on"),
    ("moons", {"n_samples": 10, "test_size": 0.95},
     r"^dataset\.test_size: 0\.95 of 10 samples leaves nothing to train on"),
    ("sum_diff", {"legacy": "yes"}, r"^dataset\.legacy: expected true or false"),
]


@pytest.mark.parametrize(("name", "params", "pattern"), CASES)
def test_bad_parameter_is_one_clear_line(name, params, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_dataset(name, seed=0, **params)
    assert "\n" not in str(info.value)


def test_bad_run_level_values():
    with pytest.raises(ConfigError, match=r"^trainer\.dtype: unknown dtype 'float16'; "
                                          r"valid choices: float32, float64$"):
        load_dataset("moons", dtype="float16")
    with pytest.raises(ConfigError, match=r"^seed: must be >= 0"):
        load_dataset("moons", seed=-3)
    with pytest.raises(ConfigError, match=r"^seed: the legacy NumPy stream needs"):
        load_dataset("sum_diff", seed=2**32, legacy=True)


def test_a_class_too_small_to_stratify():
    X = np.zeros((20, 2))
    y = np.array([0] * 19 + [1])
    with pytest.raises(ConfigError, match=r"^dataset\.test_size: cannot split 20 samples: "
                                          r"The least populated class"):
        assemble("t", Generated(X, y, "binary", 2, {}), seed=0, dtype=np.float64,
                 test_size=0.2, stratify=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_names_the_dataset_and_array(bad):
    X = np.ones((10, 2))
    X[9, 1] = bad  # lands in the held-out tail: refused even though no scaler sees it
    with pytest.raises(DataError, match=r"^dataset 'broken': X contains 1 NaN or "
                                        r"infinite value"):
        assemble("broken", Generated(X, np.ones((10, 1)), "regression", None, {}), seed=0,
                 dtype=np.float64, test_size=0.2, split="ordered")


def test_every_dataset_builds_with_its_defaults():
    for name in DATASETS:
        if name in ("mnist", "fashion_mnist", "file"):
            continue  # file-backed: covered by the MNIST and user-file tests
        ds = load_dataset(name, seed=0)
        assert ds.name == name and ds.n_train > ds.n_test > 0
