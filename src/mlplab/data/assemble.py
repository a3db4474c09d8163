"""Turn whole arrays into a `Dataset`: split, carve validation, cast, scale.

Order matters: the validation part is carved out of the training part *before* any
scaler is fitted, and scalers see only the final training part, so neither validation
nor test data influences the statistics the model is trained with.
"""

from __future__ import annotations

import numpy as np

from mlplab.data.checks import (
    check_bool,
    check_choice,
    check_finite,
    check_fraction,
    check_random_state_seed,
    check_seed,
)
from mlplab.data.dataset import Dataset
from mlplab.data.generators import Generated
from mlplab.data.scalers import SCALE_CHOICES, make_scaler
from mlplab.data.splits import split_indices, take
from mlplab.errors import ConfigError


def carve_validation(X, y, *, val_size, mode, seed, stratify):
    """Split (X, y) into (X_train, y_train, X_val, y_val); val parts are None if no val_size."""
    if val_size is None:
        return X, y, None, None
    keep, val = split_indices(X.shape[0], val_size, mode=mode, seed=seed,
                              labels=y if stratify else None, stratify=stratify,
                              key="dataset.val_size")
    return take(X, keep), take(y, keep), take(X, val), take(y, val)


def fit_and_scale(parts: dict[str, np.ndarray | None], scale: str, key: str, dtype):
    """Fit `scale` on parts['train']; return (scaler, {part: scaled array of `dtype`}).

    Parts may be any numeric dtype (uint8 pixels, float64 draws); each output is a new
    array, produced in one conversion-and-scaling pass.
    """
    scaler = make_scaler(check_choice(key, scale, SCALE_CHOICES), key)
    if scaler is not None:
        scaler.fit(parts["train"])
    out = {}
    for name, array in parts.items():
        if array is None:
            out[name] = None
        elif scaler is None:
            out[name] = array.astype(dtype)
        else:
            out[name] = scaler.transform(array, dtype=dtype)
    return scaler, out


def assemble(name: str, data: Generated, *, seed: int, dtype: np.dtype, test_size=0.2,
             split="shuffled", stratify=False, split_seed=None, val_size=None,
             scale="none", target_scale="none") -> Dataset:
    """Split generated arrays, carve validation, cast to `dtype`, fit scalers on train."""
    test_size = check_fraction("dataset.test_size", test_size)
    val_size = check_fraction("dataset.val_size", val_size, optional=True)
    stratify = check_bool("dataset.stratify", stratify)
    split_seed = (check_seed if split == "ordered" else check_random_state_seed)(
        "dataset.split_seed", split_seed, seed)
    regression = data.task == "regression"
    check_finite(f"dataset {name!r}: X", data.X)
    check_finite(f"dataset {name!r}: y", data.y)
    if stratify and regression:
        raise ConfigError(f"dataset.stratify: dataset {name!r} is a regression task; "
                          "only class labels can be stratified")
    keep, test = split_indices(data.X.shape[0], test_size, mode=split, seed=split_seed,
                               labels=None if regression else data.y, stratify=stratify)
    X_train, y_train, X_val, y_val = carve_validation(
        take(data.X, keep), take(data.y, keep), val_size=val_size, mode=split,
        seed=split_seed, stratify=stratify)
    x_scaler, X = fit_and_scale({"train": X_train, "val": X_val, "test": take(data.X, test)},
                                scale, "dataset.scale", dtype)
    y = {"train": y_train, "val": y_val, "test": take(data.y, test)}
    y_scaler = None
    if regression:
        y_scaler, y = fit_and_scale(y, target_scale, "dataset.target_scale", dtype)
    elif target_scale != "none":
        raise ConfigError(f"dataset.target_scale: dataset {name!r} has class labels; "
                          "only 'none' is valid")
    info = dict(data.info, split=split, split_seed=split_seed)
    return Dataset(name=name, task=data.task, X_train=X["train"], y_train=y["train"],
                   X_test=X["test"], y_test=y["test"], X_val=X["val"], y_val=y["val"],
                   n_classes=data.n_classes, x_scaler=x_scaler, y_scaler=y_scaler, info=info)
