"""MNIST and Fashion-MNIST: decode (IDX or CSV), verify, cache, split and scale.

`read_mnist` returns the raw uint8 images and labels, from the cache when the sources are
unchanged; `load_mnist` turns them into a `Dataset`. Memory is kept near the size of the
final arrays: the decoded bytes are viewed (not copied) as arrays, subsets and the
validation split are taken while still uint8, and scaling runs in place on the float copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from mlplab.data.assemble import carve_validation, fit_and_scale
from mlplab.data.cache import ArrayCache, fingerprint
from mlplab.data.checks import (
    check_bool,
    check_dtype,
    check_fraction,
    check_optional_int,
    check_seed,
)
from mlplab.data.dataset import Dataset
from mlplab.data.download import download_mnist
from mlplab.data.idx import parse_idx, read_file_bytes, read_label_csv
from mlplab.data.mnist_files import IDX_STEMS, IMAGE_SHAPE, N_CLASSES, N_PIXELS, locate, verify_idx
from mlplab.data.paths import dataset_dir
from mlplab.errors import ConfigError, DataError

__all__ = ["RawMnist", "download_mnist", "load_mnist", "read_mnist"]


class RawMnist(NamedTuple):
    X_train: np.ndarray  # (n, 784) uint8
    y_train: np.ndarray  # (n,) uint8
    X_test: np.ndarray
    y_test: np.ndarray
    info: dict


def _read_idx_split(paths, split, kind, verify, checks):
    images_stem, labels_stem = IDX_STEMS[split]
    arrays = []
    for stem in (images_stem, labels_stem):
        content = read_file_bytes(paths[stem])
        if verify:
            checks[paths[stem].name] = verify_idx(paths[stem], stem, kind, content)
        arrays.append(parse_idx(content, paths[stem]))
    images, labels = arrays
    where = paths[images_stem]
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"{where}: expected uint8 images of shape (n, 28, 28), got "
                        f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{paths[labels_stem]}: expected uint8 labels of shape (n,), got "
                        f"{labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{paths[labels_stem]}: {labels.shape[0]} labels for "
                        f"{images.shape[0]} images in {where.name}")
    return images.reshape(images.shape[0], N_PIXELS), labels


def _decode(fmt, paths, kind, verify) -> tuple[dict[str, np.ndarray], dict]:
    arrays, checks = {}, {}
    for split in ("train", "test"):
        if fmt == "idx":
            X, y = _read_idx_split(paths, split, kind, verify, checks)
        else:
            X, y = read_label_csv(paths[split], N_PIXELS)
            checks[paths[split].name] = "unverified (no published digest of CSV copies)"
        where = paths[IDX_STEMS[split][1]] if fmt == "idx" else paths[split]
        if y.size and y.max() >= N_CLASSES:
            raise DataError(f"{where}: label {int(y.max())} out of range; labels are 0-9")
        arrays[f"X_{split}"], arrays[f"y_{split}"] = X, y
    return arrays, checks


def read_mnist(directory, *, kind="mnist", format="auto", verify=True, cache=True) -> RawMnist:
    """Raw uint8 arrays from `directory` (IDX gz/raw or CSV), decoded once then cached."""
    directory = Path(directory).expanduser()
    fmt, paths = locate(directory, kind, format)
    sources = list(paths.values())
    key = fingerprint(sources)
    store = ArrayCache(directory, f"{kind}-{fmt}") if check_bool("dataset.cache", cache) else None
    arrays = store.load(key) if store is not None else None
    info = {"directory": str(directory), "format": fmt,
            "files": [p.name for p in sources], "cache": "hit"}
    if arrays is None:
        arrays, checks = _decode(fmt, paths, kind, check_bool("dataset.verify", verify))
        info["checks"] = checks
        info["cache"] = "off" if store is None else (
            "written" if store.save(key, arrays) else "unwritable")
    return RawMnist(arrays["X_train"], arrays["y_train"], arrays["X_test"], arrays["y_test"],
                    info)


def load_mnist(directory=None, *, kind="mnist", format="auto", scale="div255",
               dtype="float32", val_size=None, split_seed=None, stratify=False, n_train=None,
               n_test=None, verify=True, cache=True, data_dir=None) -> Dataset:
    """The official 60k/10k split as a `Dataset`, pixels scaled by `scale` (fit on train).

    `n_train`/`n_test` keep the first n samples (quick runs); `val_size` carves a seeded
    validation part out of the training samples (stratified by class on request), seeded
    by `split_seed` (None: 0; `load_dataset` passes the run seed instead).
    `directory` defaults to `<data_dir>/<kind>`.
    """
    if directory is None:
        directory = dataset_dir(data_dir, kind)
    dtype = check_dtype(dtype)
    val_size = check_fraction("dataset.val_size", val_size, optional=True)
    split_seed = check_seed("dataset.split_seed", split_seed, 0)
    stratify = check_bool("dataset.stratify", stratify)
    n_train = check_optional_int("dataset.n_train", n_train)
    n_test = check_optional_int("dataset.n_test", n_test)
    raw = read_mnist(directory, kind=kind, format=format, verify=verify, cache=cache)
    for key, wanted, have in (("n_train", n_train, raw.X_train), ("n_test", n_test, raw.X_test)):
        if wanted is not None and wanted > have.shape[0]:
            raise ConfigError(f"dataset.{key}: {wanted} exceeds the {have.shape[0]} samples "
                              f"available in {directory}")
    X_train, y_train = raw.X_train[:n_train], raw.y_train[:n_train]
    X_test, y_test = raw.X_test[:n_test], raw.y_test[:n_test]
    X_train, y_train, X_val, y_val = carve_validation(
        X_train, y_train, val_size=val_size, mode="shuffled", seed=split_seed,
        stratify=stratify)
    x_scaler, X = fit_and_scale({"train": X_train, "val": X_val, "test": X_test}, scale,
                                "dataset.scale", dtype)
    labels = {k: None if v is None else v.astype(np.int64) for k, v in
              (("train", y_train), ("val", y_val), ("test", y_test))}
    info = dict(raw.info, split="official", split_seed=split_seed)
    return Dataset(name=kind, task="multiclass", X_train=X["train"], y_train=labels["train"],
                   X_test=X["test"], y_test=labels["test"], X_val=X["val"], y_val=labels["val"],
                   n_classes=N_CLASSES, x_scaler=x_scaler, info=info)
