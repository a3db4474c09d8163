"""`dataset=file`: a user's CSV/TSV, `.npy`, `.npz` or Parquet file as a `Dataset`.

The file is read once into a table of the columns the run uses (`mlplab.data.tables`),
cached by its sha256 and the parse options when it is text, and split and scaled like
the built-in datasets (the same seeded split indices as `assemble`). To keep memory near
the size of the final arrays, each part is gathered from the table a block of rows at a
time straight into the run's dtype, and scaled in place.

The sha256 is the file's identity: it goes into `info` (the MLflow dataset digest and the
`dataset.sha256` param), and a config that pins `dataset.sha256` refuses any other
version of the file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from mlplab.data.cache import ArrayCache
from mlplab.data.checks import (
    check_bool,
    check_choice,
    check_dtype,
    check_fraction,
    check_random_state_seed,
    check_seed,
)
from mlplab.data.dataset import Dataset
from mlplab.data.paths import default_data_dir
from mlplab.data.scalers import SCALE_CHOICES, make_scaler
from mlplab.data.splits import split_indices
from mlplab.data.tables import (
    DELIMITERS,
    Table,
    check_finite_block,
    count_lines,
    extension,
    file_sha256,
    hash_and_count_lines,
    parquet_columns,
    parse_delimited,
    read_header,
    read_npy,
    read_npz,
    read_parquet,
)
from mlplab.data.targets import FILE_TASKS, check_stratifiable, encode_target
from mlplab.errors import ConfigError, DataError

GATHER_ROWS = 16384  # rows copied per step: the temporary float64 block stays a few MB
SHOWN_COLUMNS = 30  # columns listed in a "no such column" message


def resolve_path(path, data_dir) -> Path:
    """`path` as given when absolute; a relative one is looked up in the working
    directory, then in the data directory."""
    if not isinstance(path, str) or not path:
        raise ConfigError("dataset.path: required: the file to train on, e.g. "
                          "dataset.path=data/table.csv")
    given = Path(path).expanduser()
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    tried = [given] if given.is_absolute() else [Path.cwd() / given, base / given]
    for candidate in tried:
        if candidate.is_file():
            return candidate.resolve()
    raise DataError(f"dataset.path: no such file {path!r} (looked for "
                    f"{' and '.join(str(p) for p in tried)})")


def _listing(names) -> str:
    shown = ", ".join(names[:SHOWN_COLUMNS])
    return shown + (f", ... ({len(names)} in all)" if len(names) > SHOWN_COLUMNS else "")


def column_indices(key: str, spec, names: list[str], path: Path) -> list[int]:
    """Columns named by `spec` (a name, an index, or a list of them) as indices."""
    items = spec if isinstance(spec, list | tuple) else [spec]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ConfigError(f"dataset.{key}: expected column names or indices, got {item!r}")
        if isinstance(item, int):
            if not -len(names) <= item < len(names):
                raise ConfigError(f"dataset.{key}: column index {item} is out of range; "
                                  f"{path.name} has {len(names)} columns")
            out.append(item % len(names))
        elif item in names:
            out.append(names.index(item))
        else:
            raise ConfigError(f"dataset.{key}: {path.name} has no column {item!r}; its "
                              f"columns: {_listing(names)}")
    if len(set(out)) != len(out) or not out:
        raise ConfigError(f"dataset.{key}: name each column once, got {spec!r}")
    return out


def _choose_columns(names, target, features, path) -> tuple[list[int], list[int]]:
    y_cols = column_indices("target", -1 if target is None else target, names, path)
    if features is None:
        x_cols = [c for c in range(len(names)) if c not in y_cols]
    else:
        x_cols = column_indices("features", features, names, path)
        both = [names[c] for c in x_cols if c in y_cols]
        if both:
            raise ConfigError(f"dataset.features: {both[0]!r} is also the target")
    if not x_cols:
        raise ConfigError(f"dataset.features: {path.name} has no column left for features")
    return x_cols, y_cols


def _cache_for(data_dir, path: Path, key: list) -> ArrayCache:
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    options = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    return ArrayCache(base, f"file-{path.stem[:40]}-{options}")


def _data_rows(path: Path, lines: int) -> int:
    if lines <= 1:
        raise DataError(f"{path}: no data rows below the header")
    return lines - 1


def _read_text(path, suffix, target, features, cache, data_dir, info):
    # With a cache, only the hash is needed to find it (a hit never counts the lines);
    # without, hashing and counting share one read.
    sha256, lines = (file_sha256(path), None) if cache else hash_and_count_lines(path)
    info["sha256"] = sha256
    names = read_header(path, DELIMITERS[suffix])
    x_cols, y_cols = _choose_columns(names, target, features, path)
    usecols = x_cols + y_cols
    key = [["sha256", sha256], ["delimiter", DELIMITERS[suffix]], ["usecols", usecols]]

    def fill(arrays):
        parse_delimited(path, DELIMITERS[suffix], usecols, names, arrays["table"])

    store = _cache_for(data_dir, path, key) if cache else None
    arrays = store.load(key) if store is not None else None
    info["cache"] = "hit" if arrays is not None else "off"
    if store is not None and arrays is None:
        rows = _data_rows(path, count_lines(path))
        arrays = store.create(key, {"table": ((rows, len(usecols)), "<f8")}, fill)
        info["cache"] = "written" if arrays is not None else "unwritable"
    if arrays is None:
        rows = _data_rows(path, lines if lines is not None else count_lines(path))
        arrays = {"table": scratch_table((rows, len(usecols)))}
        fill(arrays)
    table = Table(arrays["table"], [names[c] for c in usecols], line_offset=2)
    f = len(x_cols)
    return table, list(range(f)), table, list(range(f, len(usecols)))


def scratch_table(shape) -> np.ndarray:
    """A table to parse into without a cache: backed by an unlinked temporary file, so its
    pages are the kernel's to drop (it is read once, by `gather`), else plain memory."""
    try:
        with tempfile.TemporaryFile(prefix="mlplab-table-") as backing:
            return np.memmap(backing, dtype=np.float64, mode="w+", shape=shape)
    except (OSError, ValueError):  # no writable temporary directory
        return np.empty(shape, dtype=np.float64)


def _read_npz(path, target, features, info):
    info["sha256"] = file_sha256(path)
    if target is not None and not isinstance(target, str):
        raise ConfigError(f"dataset.target: in an .npz, the name of the target array "
                          f"(default y), got {target!r}")
    x_name = features if isinstance(features, str) else "X"
    X, y = read_npz(path, x_name, "y" if target is None else target)
    x_names = [f"{x_name}[:, {i}]" for i in range(X.shape[1])]
    x_table = Table(X, x_names, None)
    x_cols = list(range(X.shape[1]))
    if features is not None and not isinstance(features, str):
        x_cols = column_indices("features", features, [str(i) for i in x_cols], path)
    y_name = "y" if target is None else target
    y_table = Table(y, [y_name] if y.shape[1] == 1 else [f"{y_name}[:, {i}]" for i in
                                                           range(y.shape[1])], None)
    _check_finite(path, x_table, x_cols)
    _check_finite(path, y_table, list(range(y.shape[1])))
    return x_table, x_cols, y_table, list(range(y.shape[1]))


def _read_columns(path, suffix, target, features, info):
    """`.npy` (columns are indices) or Parquet (columns are names)."""
    info["sha256"] = file_sha256(path)
    if suffix == ".npy":
        values = read_npy(path)
        names = [str(i) for i in range(values.shape[1])]
        x_cols, y_cols = _choose_columns(names, target, features, path)
    else:
        names = parquet_columns(path)
        x_cols, y_cols = _choose_columns(names, target, features, path)
        used = x_cols + y_cols
        values = read_parquet(path, [names[c] for c in used])
        names = [names[c] for c in used]
        x_cols, y_cols = list(range(len(x_cols))), list(range(len(x_cols), len(used)))
    table = Table(values, names, None)
    _check_finite(path, table, x_cols + y_cols)
    return table, x_cols, table, y_cols


def _check_finite(path, table: Table, cols) -> None:
    for start in range(0, table.values.shape[0], GATHER_ROWS):
        block = np.asarray(table.values[start:start + GATHER_ROWS][:, cols], dtype=np.float64)
        check_finite_block(path, block, start, [table.names[c] for c in cols], table.where)


def gather(values: np.ndarray, rows, cols, dtype) -> np.ndarray:
    """values[rows][:, cols] as a new C-contiguous array of `dtype`, built a block of rows
    at a time (no full-size temporary in the source's dtype)."""
    rows = np.arange(values.shape[0])[rows] if isinstance(rows, slice) else rows
    out = np.empty((len(rows), len(cols)), dtype=dtype)
    every = list(cols) == list(range(values.shape[1]))
    for start in range(0, len(rows), GATHER_ROWS):
        block = values[rows[start:start + GATHER_ROWS]]
        out[start:start + GATHER_ROWS] = block if every else block[:, cols]
    return out


def load_file(path: str = "", *, target=None, features=None, task="auto", sha256=None,
              test_size=0.2, split="shuffled", stratify=False, split_seed=None,
              val_size=None, scale="none", target_scale="none", cache=True, seed=0,
              dtype="float64", data_dir=None) -> Dataset:
    """The file at `path` as a `Dataset` (see conf/dataset/file.yaml for every key)."""
    dtype = check_dtype(dtype)
    task = check_choice("dataset.task", task, FILE_TASKS)
    test_size = check_fraction("dataset.test_size", test_size)
    val_size = check_fraction("dataset.val_size", val_size, optional=True)
    stratify, cache = check_bool("dataset.stratify", stratify), check_bool("dataset.cache", cache)
    split_seed = (check_seed if split == "ordered" else check_random_state_seed)(
        "dataset.split_seed", split_seed, seed)
    check_choice("dataset.scale", scale, SCALE_CHOICES)
    resolved = resolve_path(path, data_dir)
    suffix = extension(resolved)
    info = {"path": str(resolved), "format": suffix[1:], "cache": "none"}
    if suffix in DELIMITERS:
        parts = _read_text(resolved, suffix, target, features, cache, data_dir, info)
    elif suffix == ".npz":
        parts = _read_npz(resolved, target, features, info)
    else:
        parts = _read_columns(resolved, suffix, target, features, info)
    if sha256 is not None and sha256 != info["sha256"]:
        raise ConfigError(f"dataset.sha256: {resolved} has sha256 {info['sha256']}, the "
                          f"config expects {sha256}; null accepts any version of the file")
    x_table, x_cols, y_table, y_cols = parts
    y_names = [y_table.names[c] for c in y_cols]
    y_all = gather(y_table.values, slice(None), y_cols, np.float64)
    inferred, y, n_classes, classes = encode_target(y_all, task, y_names, resolved)
    if stratify and inferred in ("regression", "multilabel"):
        raise ConfigError(f"dataset.stratify: {resolved.name} is a {inferred} task; only "
                          "single class labels can be stratified")
    if stratify:
        check_stratifiable(y, classes, y_names, resolved)
    n = y.shape[0]
    labels = y if stratify else None
    keep, test = split_indices(n, test_size, mode=split, seed=split_seed, labels=labels,
                               stratify=stratify)
    keep = np.arange(n)[keep] if isinstance(keep, slice) else keep
    parts = {"train": keep, "val": None, "test": test}
    if val_size is not None:
        inner, val = split_indices(len(keep), val_size, mode=split, seed=split_seed,
                                   labels=None if labels is None else labels[keep],
                                   stratify=stratify, key="dataset.val_size")
        parts.update(train=keep[inner], val=keep[val])
    X = {k: None if rows is None else gather(x_table.values, rows, x_cols, dtype)
         for k, rows in parts.items()}
    Y = {k: None if rows is None else np.ascontiguousarray(y[rows]) for k, rows in parts.items()}
    x_scaler = make_scaler(scale, "dataset.scale")
    if x_scaler is not None:
        x_scaler.fit(X["train"])
        for array in X.values():
            if array is not None:
                x_scaler.transform(array, inplace=True)
    y_scaler = None
    if inferred == "regression":
        y_scaler = make_scaler(check_choice("dataset.target_scale", target_scale,
                                            SCALE_CHOICES), "dataset.target_scale")
        if y_scaler is not None:
            y_scaler.fit(Y["train"])
        Y = {k: None if v is None else (v.astype(dtype) if y_scaler is None else
                                        y_scaler.transform(v, dtype=dtype))
             for k, v in Y.items()}
    elif target_scale != "none":
        raise ConfigError(f"dataset.target_scale: {resolved.name} has class labels "
                          f"({inferred}); only 'none' is valid")
    info.update(task=inferred, task_inferred=task == "auto", split=split,
                split_seed=split_seed, feature_names=[x_table.names[c] for c in x_cols],
                target_names=y_names,
                run_tags={"dataset_task": inferred, "dataset_sha256": info["sha256"]},
                resolved_keys={"sha256": info["sha256"]})
    if classes is not None:
        info["classes"] = [float(c) if not float(c).is_integer() else int(c) for c in classes]
    return Dataset(name=resolved.stem, task=inferred, X_train=X["train"], y_train=Y["train"],
                   X_test=X["test"], y_test=Y["test"], X_val=X["val"], y_val=Y["val"],
                   n_classes=n_classes, x_scaler=x_scaler, y_scaler=y_scaler, info=info)
