"""Scalers: statistics from the training part only, exact inverses, saved state."""

from __future__ import annotations

import io

import numpy as np
import pytest

from mlplab.data import MaxScaler, MinMaxScaler, Standardizer, scaler_from_state
from mlplab.data.assemble import assemble
from mlplab.data.generators import Generated
from mlplab.data.scalers import ConstantScaler, make_scaler
from mlplab.errors import ConfigError, DataError

rng = np.random.default_rng(7)
X_TRAIN = rng.normal(3.0, 2.0, size=(200, 4)) * np.array([1.0, 10.0, 0.1, 5.0])


def test_standardizer_uses_population_statistics_per_feature():
    scaler = Standardizer().fit(X_TRAIN)
    for j in range(X_TRAIN.shape[1]):
        column = X_TRAIN[:, j]
        mean = column.sum() / column.size
        std = np.sqrt(((column - mean) ** 2).sum() / column.size)  # ddof = 0
        assert scaler.mean[j] == pytest.approx(mean, rel=1e-13)
        assert scaler.std[j] == pytest.approx(std, rel=1e-13)


@pytest.mark.parametrize("n", [1, 7, 128, 129, 1000, 7001])
def test_feature_statistics_equal_one_dimensional_reductions_to_the_bit(n):
    X = np.random.default_rng(n).normal(50, 30, size=(n, 70))  # > one block of 64 columns
    scaler = Standardizer().fit(X)
    for j in range(X.shape[1]):
        column = X[:, j].copy()
        assert scaler.mean[j] == np.mean(column)
        assert scaler.std[j] == (np.std(column) or 1.0)


@pytest.mark.parametrize("scale", ["standardize", "max", "minmax"])
def test_a_shifted_test_part_does_not_move_the_fitted_scaler(scale):
    """Leakage check: the test rows are shifted by 1e6; the scaler must not notice."""
    X = np.abs(rng.normal(size=(100, 3))) + 1
    y = (np.arange(100) % 2).astype(np.int64)
    shifted = X.copy()
    shifted[80:] += 1e6  # the ordered split holds out rows 80..99
    clean = assemble("t", Generated(X, y, "binary", 2, {}), seed=0, dtype=np.float64,
                     test_size=0.2, split="ordered", scale=scale)
    leaky = assemble("t", Generated(shifted, y, "binary", 2, {}), seed=0, dtype=np.float64,
                     test_size=0.2, split="ordered", scale=scale)
    reference = make_scaler(scale).fit(X[:80])
    for key, value in clean.x_scaler.state_dict().items():
        np.testing.assert_array_equal(value, leaky.x_scaler.state_dict()[key])
        np.testing.assert_array_equal(value, reference.state_dict()[key])
    np.testing.assert_array_equal(clean.X_train, leaky.X_train)
    assert leaky.X_test.min() > clean.X_test.max()


def test_validation_rows_are_excluded_from_the_fit():
    ds = assemble("t", Generated(X_TRAIN, np.zeros((200, 1)), "regression", None, {}),
                  seed=0, dtype=np.float64, test_size=0.25, split="ordered", val_size=0.2,
                  scale="standardize")
    assert (ds.n_train, ds.n_val, ds.n_test) == (120, 30, 50)
    np.testing.assert_array_equal(ds.x_scaler.mean, Standardizer().fit(X_TRAIN[:120]).mean)


@pytest.mark.parametrize("scaler", [Standardizer(), MaxScaler(), MinMaxScaler(),
                                    ConstantScaler(255.0)])
def test_inverse_transform_undoes_transform(scaler):
    scaler.fit(X_TRAIN)
    X = rng.normal(size=(30, 4))
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X,
                               rtol=1e-12, atol=1e-12)


def test_scaled_ranges():
    np.testing.assert_allclose(MinMaxScaler().fit_transform(X_TRAIN).min(axis=0), 0)
    np.testing.assert_allclose(MinMaxScaler().fit_transform(X_TRAIN).max(axis=0), 1)
    assert MaxScaler().fit_transform(X_TRAIN).max() == 1.0
    np.testing.assert_array_equal(ConstantScaler(255.0).transform(np.array([[255, 51]])),
                                  [[1.0, 0.2]])


def test_constant_features_map_to_zero_instead_of_nan():
    X = np.column_stack([np.full(10, 4.0), np.arange(10.0)])
    for scaler in (Standardizer(), MinMaxScaler()):
        out = scaler.fit_transform(X)
        assert np.isfinite(out).all() and (out[:, 0] == 0).all()


def test_transform_keeps_float32_and_converts_integers():
    X32 = X_TRAIN.astype(np.float32)
    assert Standardizer().fit(X32).transform(X32).dtype == np.float32
    pixels = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    out = ConstantScaler(255.0).transform(pixels, dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pixels.astype(np.float32) / np.float32(255))


@pytest.mark.parametrize("scaler", [Standardizer(), MaxScaler(), MinMaxScaler(),
                                    ConstantScaler(16.0)])
def test_state_survives_an_npz_round_trip(scaler):
    scaler.fit(X_TRAIN)
    buffer = io.BytesIO()
    np.savez(buffer, **scaler.state_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as saved:
        restored = scaler_from_state(dict(saved))
    assert type(restored) is type(scaler)
    np.testing.assert_array_equal(restored.transform(X_TRAIN), scaler.transform(X_TRAIN))


def test_nan_in_training_data_is_refused():
    X = X_TRAIN.copy()
    X[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        Standardizer().fit(X)


def test_unknown_scaler_name():
    with pytest.raises(ConfigError, match=r"^dataset\.scale: unknown scaling 'zscore'; "
                                          r"valid choices: div255, max, minmax, none"):
        make_scaler("zscore")

