"""Classification toys: scikit-learn generators, xor, spirals, digits, and their splits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlplab.data import load_dataset
from mlplab.data.assemble import assemble
from mlplab.data.generators import Generated


def rows(*arrays):
    return {tuple(r) for a in arrays for r in np.asarray(a)}


def test_moons_defaults_reproduce_the_skalski_split():
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    X, y = make_moons(n_samples=1000, noise=0.2, random_state=100)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=42)
    ds = load_dataset("moons", seed=123)  # the run seed must not matter: both seeds pinned
    np.testing.assert_array_equal(ds.X_train, X_train)
    np.testing.assert_array_equal(ds.X_test, X_test)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.task == "binary" and ds.n_outputs == 1 and ds.y_train.dtype == np.int64


@pytest.mark.parametrize("n_samples", [1, 2, 7, 200, 1001])
@pytest.mark.parametrize("random_state", [0, 100, 2**32 - 1])
def test_numpy_moons_circles_and_split_draw_what_scikit_learn_draws(n_samples, random_state):
    from sklearn.datasets import make_circles, make_moons
    from sklearn.model_selection import train_test_split

    from mlplab.data.generators import circles, moons
    from mlplab.data.splits import split_indices

    got = moons(seed=0, n_samples=n_samples, noise=0.3, random_state=random_state)
    X, y = make_moons(n_samples=n_samples, noise=0.3, random_state=random_state)
    np.testing.assert_array_equal(got.X, X)
    np.testing.assert_array_equal(got.y, y)
    got = circles(seed=0, n_samples=n_samples, noise=0.05, factor=0.6,
                  random_state=random_state)
    X, y = make_circles(n_samples=n_samples, noise=0.05, factor=0.6, random_state=random_state)
    np.testing.assert_array_equal(got.X, X)
    np.testing.assert_array_equal(got.y, y)
    if n_samples > 1:
        keep, out = split_indices(n_samples, 0.25, mode="shuffled", seed=random_state)
        expected = train_test_split(np.arange(n_samples), test_size=0.25,
                                    random_state=random_state)
        np.testing.assert_array_equal(keep, expected[0])
        np.testing.assert_array_equal(out, expected[1])


def test_moons_and_circles_runs_do_not_import_scikit_learn():
    import subprocess
    import sys

    code = ("import sys; from mlplab.data import load_dataset; "
            "load_dataset('moons', seed=0, val_size=0.2); "
            "load_dataset('circles', seed=1, split_seed=None); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("key", ["random_state", "split_seed"])
def test_seeds_beyond_the_legacy_stream_are_named(key):
    from mlplab.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^dataset.{key}: .*2\\*\\*32"):
        load_dataset("moons", seed=0, **{key: 2**32})


def test_circles_radii_follow_factor():
    ds = load_dataset("circles", seed=0, noise=0.0, factor=0.3, scale="none")
    X = np.concatenate([ds.X_train, ds.X_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], 0.3)
    assert (ds.n_train, ds.n_test) == (900, 100)


def test_xor_labels_are_sign_disagreement_without_noise():
    ds = load_dataset("xor", seed=5, noise=0.0, n_samples=400)
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        expected = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
        np.testing.assert_array_equal(y, expected)
    assert 0.35 < ds.y_train.mean() < 0.65


@pytest.mark.parametrize("n_classes", [2, 3])
def test_spiral_points_lie_on_their_arm(n_classes):
    turns = 1.25
    ds = load_dataset("spirals", seed=1, noise=0.0, n_classes=n_classes, turns=turns,
                      n_samples=300)
    X = np.concatenate([ds.X_train, ds.X_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    radius = np.hypot(X[:, 0], X[:, 1])
    t = (radius - 0.05) / 0.95
    predicted = 2 * math.pi * (turns * t + y / n_classes)
    gap = np.angle(np.exp(1j * (np.arctan2(X[:, 1], X[:, 0]) - predicted)))
    np.testing.assert_allclose(gap, 0, atol=1e-9)
    assert ds.n_classes == n_classes and np.bincount(y).min() == 300 // n_classes


def test_blobs_task_follows_the_number_of_centers():
    three = load_dataset("blobs", seed=0)
    two = load_dataset("blobs", seed=0, centers=2, n_features=5)
    assert (three.task, three.n_classes, three.n_outputs) == ("multiclass", 3, 3)
    assert (two.task, two.n_outputs, two.n_features) == ("binary", 1, 5)


def test_digits_scaled_by_the_training_maximum():
    ds = load_dataset("digits", seed=0)
    assert ds.n_train + ds.n_test == 1797 and ds.n_features == 64 and ds.n_classes == 10
    assert ds.x_scaler.scale == 16.0 and ds.X_train.max() == 1.0


def test_random_state_null_follows_the_run_seed():
    a, b = load_dataset("blobs", seed=1), load_dataset("blobs", seed=2)
    assert rows(a.X_train, a.X_test) != rows(b.X_train, b.X_test)
    c = load_dataset("blobs", seed=2, random_state=1, split_seed=1)
    np.testing.assert_array_equal(a.X_train, c.X_train)


def test_split_seed_reshuffles_the_same_samples():
    a = load_dataset("moons", split_seed=1)
    b = load_dataset("moons", split_seed=2)
    assert rows(a.X_test) != rows(b.X_test)
    assert rows(a.X_train, a.X_test) == rows(b.X_train, b.X_test)


def test_stratified_test_and_validation_parts_keep_class_proportions():
    X = np.random.default_rng(0).normal(size=(1000, 2))
    y = (np.arange(1000) < 100).astype(np.int64)  # 10% positives
    data = Generated(X, y, "binary", 2, {})

    def positives(stratify, split_seed):
        ds = assemble("t", data, seed=0, dtype=np.float64, test_size=0.2, val_size=0.25,
                      stratify=stratify, split_seed=split_seed)
        assert (ds.n_train, ds.n_val, ds.n_test) == (600, 200, 200)
        assert len(rows(ds.X_train, ds.X_val, ds.X_test)) == 1000
        return ds.y_train.sum(), ds.y_val.sum(), ds.y_test.sum()

    for split_seed in range(5):
        assert positives(True, split_seed) == (60, 20, 20)
    assert any(positives(False, s) != (60, 20, 20) for s in range(5))


def test_float32_and_standardized_features():
    ds = load_dataset("spirals", seed=0, dtype="float32", scale="standardize")
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1, atol=1e-5)
