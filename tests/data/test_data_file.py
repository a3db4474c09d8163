"""`dataset=file`: a user's CSV/TSV, .npy, .npz or Parquet file loads into the same
`Dataset` the built-in path (`assemble`) makes from the same numbers, with its task,
sha256 and cache."""

from __future__ import annotations

import csv
import hashlib
import sys

import numpy as np
import pytest

from mlplab.data import load_dataset
from mlplab.data.assemble import assemble
from mlplab.data.generators import Generated
from mlplab.errors import ConfigError, DataError


def write_csv(path, header, rows, delimiter=","):
    """Written with the csv module, read back independently of mlplab's parser."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    return X, y


def csv_with(path, X, y, names=("a", "b", "c", "label")):
    # repr of a float round-trips exactly, so the oracle below sees the same numbers
    return write_csv(path, names, [[repr(float(v)) for v in row] + [int(t)]
                                   for row, t in zip(X, y, strict=True)])


def load(path, tmp_path, **keys):
    return load_dataset("file", path=str(path), data_dir=tmp_path / "data", seed=3, **keys)


@pytest.mark.parametrize("keys", [
    {},
    {"scale": "standardize", "val_size": 0.25},
    {"stratify": True, "split_seed": 7, "scale": "minmax"},
    {"split": "ordered", "test_size": 0.3},
])
def test_csv_gives_the_arrays_assemble_makes_from_the_same_numbers(tmp_path, keys):
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    with open(path, newline="") as handle:  # the oracle's own parse of the file
        rows = list(csv.reader(handle))[1:]
    parsed = np.array([[float(v) for v in row] for row in rows])
    oracle = assemble("t", Generated(parsed[:, :3], parsed[:, 3].astype(np.int64), "binary",
                                     2, {}), seed=3, dtype=np.float64, **keys)
    ds = load(path, tmp_path, **keys)
    assert ds.task == "binary" and ds.n_classes == 2 and ds.n_features == 3
    # float64 end to end, the same split indices and the same scaler arithmetic: equal bits
    for part, (X_part, y_part) in oracle.splits().items():
        np.testing.assert_array_equal(ds.splits()[part][0], X_part)
        np.testing.assert_array_equal(ds.splits()[part][1], y_part)
    assert ds.info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.info["feature_names"] == ["a", "b", "c"] and ds.info["target_names"] == ["label"]


def test_float32_run_keeps_float32_and_the_float64_values(tmp_path):
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    ds64 = load(path, tmp_path, scale="standardize")
    ds32 = load(path, tmp_path, scale="standardize", dtype="float32")
    assert ds32.X_train.dtype == np.float32 and ds32.X_test.dtype == np.float32
    # scaled in float32 rather than cast after scaling in float64: a few ulps of float32
    np.testing.assert_allclose(ds32.X_train, ds64.X_train, rtol=0, atol=1e-6)


def test_target_and_features_pick_columns_by_name_or_index(tmp_path):
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    ds = load(path, tmp_path, target="a", features=["c", 1], split="ordered")
    assert ds.task == "regression" and ds.info["feature_names"] == ["c", "b"]
    n_train = ds.n_train
    np.testing.assert_array_equal(ds.X_train, X[:n_train][:, [2, 1]])
    np.testing.assert_array_equal(ds.y_train, X[:n_train, :1])


def test_tsv_is_read_with_tabs(tmp_path):
    X, y = table()
    rows = [[repr(float(v)) for v in row] + [int(t)] for row, t in zip(X, y, strict=True)]
    path = write_csv(tmp_path / "t.tsv", ["a", "b", "c", "label"], rows, delimiter="\t")
    ds = load(path, tmp_path, split="ordered")
    np.testing.assert_array_equal(ds.X_train, X[:ds.n_train])


def test_npz_arrays_x_and_y_or_named_ones(tmp_path):
    X, y = table()
    np.savez(tmp_path / "d.npz", X=X, y=y, inputs=X[:, :2], labels=y)
    ds = load(tmp_path / "d.npz", tmp_path, split="ordered")
    np.testing.assert_array_equal(ds.X_train, X[:ds.n_train])
    np.testing.assert_array_equal(ds.y_train, y[:ds.n_train])
    named = load(tmp_path / "d.npz", tmp_path, features="inputs", target="labels")
    assert named.n_features == 2 and named.task == "binary"
    with pytest.raises(ConfigError, match=r"^dataset.target: .*d.npz has no array 'z'; its "
                                          r"arrays: X, y, inputs, labels"):
        load(tmp_path / "d.npz", tmp_path, target="z")


def test_npy_columns_are_indices_and_the_last_is_the_default_target(tmp_path):
    X, y = table()
    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    ds = load(tmp_path / "d.npy", tmp_path, split="ordered")
    assert ds.task == "binary" and ds.n_features == 3
    np.testing.assert_array_equal(ds.X_train, X[:ds.n_train])
    first = load(tmp_path / "d.npy", tmp_path, target=0, features=[1, 2], split="ordered")
    np.testing.assert_array_equal(first.y_train[:, 0], X[:first.n_train, 0])


def test_parquet_when_pyarrow_is_installed(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = table()
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y})
    frame.to_parquet(tmp_path / "d.parquet")
    ds = load(tmp_path / "d.parquet", tmp_path, split="ordered")
    np.testing.assert_array_equal(ds.X_train, X[:ds.n_train])
    assert ds.task == "binary"


@pytest.mark.parametrize("targets,task,n_outputs", [
    ([[0], [1]], "binary", 1),
    ([[-1], [1]], "binary", 1),            # any two values: the lower is class 0
    ([[1], [2], [3]], "multiclass", 3),
    ([[0.5], [1.5], [2.5]], "regression", 1),
    ([[v] for v in range(40)], "regression", 1),  # more integers than AUTO_MAX_CLASSES
    ([[0, 1], [1, 1], [1, 0]], "multilabel", 2),
    ([[0, 2], [1, 1]], "regression", 2),
])
def test_auto_task_from_the_target(tmp_path, targets, task, n_outputs):
    n = 80
    rows = [[i * 0.5] + targets[i % len(targets)] for i in range(n)]
    names = ["x"] + [f"t{k}" for k in range(len(targets[0]))]
    path = write_csv(tmp_path / "t.csv", names, rows)
    ds = load(path, tmp_path, target=names[1:])
    assert ds.task == task and ds.n_outputs == n_outputs
    assert ds.info["run_tags"]["dataset_task"] == task


def test_binary_labels_map_to_0_and_1_in_sorted_order(tmp_path):
    rows = [[i, -1 if i % 3 else 1] for i in range(30)]
    ds = load(write_csv(tmp_path / "t.csv", ["x", "y"], rows), tmp_path, split="ordered")
    expected = np.array([0 if i % 3 else 1 for i in range(ds.n_train)])
    np.testing.assert_array_equal(ds.y_train, expected)
    assert ds.info["classes"] == [-1, 1]


def test_multilabel_targets_are_an_n_by_k_0_1_array(tmp_path):
    rows = [[i, i % 2, (i // 2) % 2, 1 - i % 2] for i in range(40)]
    path = write_csv(tmp_path / "t.csv", ["x", "p", "q", "r"], rows)
    ds = load(path, tmp_path, target=["p", "q", "r"], task="multilabel", split="ordered")
    assert ds.task == "multilabel" and ds.n_outputs == 3
    assert ds.y_train.shape == (ds.n_train, 3) and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, np.array(rows)[:ds.n_train, 1:])


def test_explicit_task_is_checked_against_the_target(tmp_path):
    rows = [[i, i % 3] for i in range(30)]
    path = write_csv(tmp_path / "t.csv", ["x", "y"], rows)
    with pytest.raises(DataError, match="dataset.task=binary needs two classes, target 'y' "
                                        "has 3; valid choices: dataset.task=multiclass"):
        load(path, tmp_path, task="binary")
    assert load(path, tmp_path, task="regression").task == "regression"


def test_parsed_table_is_cached_by_sha256_and_columns(tmp_path):
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    first = load(path, tmp_path)
    again = load(path, tmp_path)
    assert (first.info["cache"], again.info["cache"]) == ("written", "hit")
    np.testing.assert_array_equal(first.X_train, again.X_train)
    assert load(path, tmp_path, features=["a"]).info["cache"] == "written"  # other columns
    assert load(path, tmp_path, cache=False).info["cache"] == "off"
    X[0, 0] += 1.0  # a new version of the file: same name, new sha256, parsed again
    csv_with(path, X, y)
    edited = load(path, tmp_path, split="ordered")
    assert edited.info["cache"] == "written" and edited.info["sha256"] != first.info["sha256"]
    assert edited.X_train[0, 0] == X[0, 0]


def test_unwritable_cache_still_loads(tmp_path):
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    (tmp_path / "data").write_text("a file where the cache directory would go")
    ds = load(path, tmp_path)
    assert ds.info["cache"] == "unwritable" and ds.n_train == 96


def test_pinned_sha256_refuses_another_version(tmp_path):
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load(path, tmp_path, sha256=sha).info["sha256"] == sha
    with pytest.raises(ConfigError, match=rf"^dataset.sha256: .*t.csv has sha256 {sha}, the "
                                          "config expects 00ff"):
        load(path, tmp_path, sha256="00ff")


def test_relative_path_is_found_in_the_data_dir(tmp_path, monkeypatch):
    X, y = table()
    (tmp_path / "data").mkdir()
    csv_with(tmp_path / "data" / "t.csv", X, y)
    monkeypatch.chdir(tmp_path)
    assert load("t.csv", tmp_path).info["path"] == str(tmp_path / "data" / "t.csv")


def test_trailing_blank_lines_are_fine_blank_lines_inside_are_not(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,0\n2,1\n3,0\n4,1\n5,0\n\n\n")
    assert load(path, tmp_path, test_size=0.4).n_train == 3
    path.write_text("x,y\n1,0\n2,1\n\n3,0\n4,1\n5,0\n")
    with pytest.raises(DataError, match=r"t.csv: 1 blank line\(s\) among the data rows"):
        load(path, tmp_path, test_size=0.4, cache=False)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # makes the import fail
    with pytest.raises(DataError, match=r"^dataset.path: reading .*d.parquet \(Parquet\) "
                                        r"needs pandas and pyarrow, which are not installed"):
        load(tmp_path / "d.parquet", tmp_path)


def test_non_finite_cells_of_arrays_are_named_by_row_and_column(tmp_path):
    X, y = table()
    X[7, 2] = np.inf
    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    with pytest.raises(DataError, match=r"d.npy: row 7, column '2': inf \(NaN or infinite\)"):
        load(tmp_path / "d.npy", tmp_path)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    with pytest.raises(DataError, match=r"d.npz: row 7, column 'X\[:, 2\]': inf"):
        load(tmp_path / "d.npz", tmp_path)


@pytest.mark.parametrize("pandas_present", [True, False])
def test_both_block_parsers_read_the_same_numbers(tmp_path, monkeypatch, pandas_present):
    """pandas' parser when it is installed, NumPy's loadtxt otherwise: same bits, same
    errors."""
    if not pandas_present:
        monkeypatch.setitem(sys.modules, "pandas", None)  # makes the import fail
    X, y = table()
    path = csv_with(tmp_path / "t.csv", X, y)
    ds = load(path, tmp_path, split="ordered", cache=False)
    np.testing.assert_array_equal(ds.X_train, X[:ds.n_train])
    path.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DataError, match=r"t.csv: line 3, column 'b': non-numeric value 'x'"):
        load(path, tmp_path, cache=False)
