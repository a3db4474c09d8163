"""MNIST: IDX (gz/raw) and CSV give the same arrays, checksums, cache, malformed files."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest
from data_writers import (
    idx_bytes,
    small_mnist_arrays,
    write_idx,
    write_label_csv,
    write_small_idx,
)

import mlplab.data.mnist as mnist_module
from mlplab.data import load_dataset
from mlplab.data.idx import read_idx
from mlplab.data.mnist import load_mnist, read_mnist

# Published class counts of the official split.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def small(tmp_path):
    arrays = small_mnist_arrays()
    return arrays, write_small_idx(tmp_path / "small", arrays)


def flat(images):
    return images.reshape(images.shape[0], -1)


# ------------------------------------------------------------------ small synthetic files

@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_decode_to_the_written_arrays(tmp_path, gz):
    arrays = small_mnist_arrays()
    directory = write_small_idx(tmp_path / "d", arrays, gz=gz)
    raw = read_mnist(directory, verify=False, cache=False)
    for got, want in zip(raw[:4], arrays, strict=True):
        np.testing.assert_array_equal(got, want.reshape(got.shape))
    assert raw.info["format"] == "idx"


def test_idx_reader_handles_wider_types(tmp_path):
    values = np.arange(-6, 6, dtype=">i2").reshape(3, 4)
    header = bytes([0, 0, 0x0B, 2]) + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")
    path = tmp_path / "shorts-idx2"
    path.write_bytes(header + values.tobytes())
    np.testing.assert_array_equal(read_idx(path), values)


def test_csv_and_idx_give_identical_datasets(tmp_path):
    X_tr, y_tr, X_te, y_te = arrays = small_mnist_arrays()
    directory = write_small_idx(tmp_path / "both", arrays)
    write_label_csv(directory / "mnist_train.csv", X_tr, y_tr)
    write_label_csv(directory / "mnist_test.csv", X_te, y_te)
    from_idx = load_mnist(directory, format="idx", verify=False)
    from_csv = load_mnist(directory, format="csv", verify=False)
    assert from_csv.info["format"] == "csv"
    for key in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(from_idx, key), getattr(from_csv, key))
    np.testing.assert_array_equal(from_idx.X_train, flat(X_tr).astype(np.float32) / 255)


def test_csv_without_header_row(tmp_path):
    X_tr, y_tr, X_te, y_te = small_mnist_arrays()
    directory = tmp_path / "csv"
    directory.mkdir()
    for name, X, y in (("mnist_train.csv", X_tr, y_tr), ("mnist_test.csv", X_te, y_te)):
        text = write_label_csv(directory / name, X, y).read_text()
        (directory / name).write_text(text.split("\n", 1)[1])
    raw = read_mnist(directory, cache=False)
    np.testing.assert_array_equal(raw.y_train, y_tr)


def test_cache_is_used_on_the_second_load(small, monkeypatch):
    arrays, directory = small
    first = load_mnist(directory, verify=False)
    assert first.info["cache"] == "written"
    assert sorted(p.name for p in (directory / ".cache").iterdir())[0] == "mnist-idx.X_test.npy"

    def no_decoding(*args, **kwargs):
        raise AssertionError("sources decoded although the cache is valid")

    monkeypatch.setattr(mnist_module, "_decode", no_decoding)
    second = load_mnist(directory, verify=False)
    assert second.info["cache"] == "hit"
    np.testing.assert_array_equal(second.X_train, first.X_train)
    np.testing.assert_array_equal(second.y_test, first.y_test)


def test_cache_is_invalidated_when_a_source_changes(small):
    arrays, directory = small
    load_mnist(directory, verify=False)
    X_tr, y_tr, X_te, y_te = arrays
    replaced = y_te.copy()
    replaced[:3] = (replaced[:3] + 1) % 10
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", replaced)
    stat = (directory / "t10k-labels-idx1-ubyte.gz").stat()
    os.utime(directory / "t10k-labels-idx1-ubyte.gz", ns=(stat.st_atime_ns,
                                                        stat.st_mtime_ns + 10**9))
    ds = load_mnist(directory, verify=False)
    assert ds.info["cache"] == "written"
    np.testing.assert_array_equal(ds.y_test, replaced)


def test_touching_a_source_invalidates_the_cache(small):
    _, directory = small
    load_mnist(directory, verify=False)
    path = directory / "train-images-idx3-ubyte.gz"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_mnist(directory, verify=False).info["cache"] == "written"


def test_unwritable_cache_still_loads(small, monkeypatch):
    _, directory = small

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("mlplab.data.cache._atomic_write", refuse)
    ds = load_mnist(directory, verify=False)
    assert ds.info["cache"] == "unwritable" and ds.n_train == 50


def test_subsets_validation_and_scalings(small):
    (X_tr, y_tr, _, _), directory = small
    ds = load_mnist(directory, verify=False, n_train=40, n_test=10, val_size=0.25,
                    split_seed=3, scale="max", dtype="float64")
    assert (ds.n_train, ds.n_val, ds.n_test) == (30, 10, 10)
    assert ds.X_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    pixels = flat(X_tr[:40]).astype(np.float64)
    # train and val partition the first 40 samples; the max is the train part's own max
    train_rows = ds.X_train * ds.x_scaler.scale
    together = np.concatenate([train_rows, ds.X_val * ds.x_scaler.scale])
    assert {tuple(r) for r in together} == {tuple(r) for r in pixels}
    assert ds.x_scaler.scale == train_rows.max()
    standardized = load_mnist(directory, verify=False, scale="standardize")
    np.testing.assert_allclose(standardized.X_train.mean(axis=0), 0, atol=1e-5)


# ------------------------------------------------------------------ real MNIST

def test_real_mnist_official_split(mnist_dir):
    ds = load_dataset("mnist", data_dir=mnist_dir.parent, seed=0, dtype="float32")
    assert (ds.n_train, ds.n_test, ds.n_features, ds.n_classes) == (60000, 10000, 784, 10)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == TEST_COUNTS
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.X_train.min() == 0 and ds.X_train.max() == 1
    assert set(ds.info["checks"].values()) == {"sha256"}
    again = load_dataset("mnist", data_dir=mnist_dir.parent, seed=0, dtype="float32")
    assert again.info["cache"] == "hit"
    np.testing.assert_array_equal(again.X_test, ds.X_test)


def test_real_mnist_max_scaling_is_the_tutorials_division(mnist_dir):
    ds = load_mnist(mnist_dir, scale="max", dtype="float64", n_test=100)
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz") as handle:
        pixels = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 784)
    x = pixels[:100].astype(np.float64)
    np.testing.assert_array_equal(ds.X_test * 1, x / np.max(x))  # test max is 255 as well


def test_real_mnist_csv_matches_idx(mnist_dir, tmp_path):
    idx = read_mnist(mnist_dir, cache=False)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_label_csv(csv_dir / "mnist_train.csv", idx.X_train[:1500], idx.y_train[:1500])
    write_label_csv(csv_dir / "mnist_test.csv", idx.X_test[:300], idx.y_test[:300])
    csv = read_mnist(csv_dir, cache=False)
    np.testing.assert_array_equal(csv.X_train, idx.X_train[:1500])
    np.testing.assert_array_equal(csv.y_test, idx.y_test[:300])


def test_real_mnist_raw_idx_with_stratified_validation(mnist_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for path in mnist_dir.glob("*.gz"):
        with gzip.open(path) as src, (raw_dir / path.stem).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    ds = load_mnist(raw_dir, val_size=0.1, stratify=True, split_seed=0, cache=False)
    assert set(ds.info["checks"].values()) == {"sha256"}
    assert (ds.n_train, ds.n_val) == (54000, 6000)
    np.testing.assert_allclose(np.bincount(ds.y_val) / 6000,
                               np.array(TRAIN_COUNTS) / 60000, atol=1e-3)


def test_written_idx_matches_the_published_file_byte_for_byte(mnist_dir):
    """Cross-check of the test writer itself against a real file."""
    raw = read_mnist(mnist_dir, cache=False)
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as handle:
        assert idx_bytes(raw.y_test) == handle.read()
