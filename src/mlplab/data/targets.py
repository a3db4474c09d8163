"""The target of a user's file: which task it is, and its labels in the engine's form.

`encode_target` takes the target columns as read (float64) and returns what a `Dataset`
carries: class labels 0..K-1 (in the sorted order of the file's values) for binary and
multiclass, an (n, k) 0/1 int64 array for multilabel, the values for regression. With
`task: auto` the task is inferred from the values; with a given task they are checked
against it, and a mismatch is one line that says which task would fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlplab.errors import ConfigError, DataError

FILE_TASKS = ("auto", "binary", "multiclass", "multilabel", "regression")
# `task: auto` calls one column of integers with at most this many distinct values class
# labels (two: binary); any other target is regression. Beyond it, say dataset.task.
AUTO_MAX_CLASSES = 20


def encode_target(y: np.ndarray, task: str, names: list[str], path: Path):
    """(task, targets, n_classes, classes) from the (n, k) float64 target columns.

    Class labels become 0..K-1 in the order of their sorted values (`classes`)."""
    shown = ", ".join(repr(n) for n in names)
    integral = bool(np.all(y == np.round(y)))
    if task == "auto":
        if y.shape[1] > 1:
            task = "multilabel" if np.isin(y, (0, 1)).all() else "regression"
        elif integral and np.unique(y).size <= AUTO_MAX_CLASSES:
            task = "binary" if np.unique(y).size <= 2 else "multiclass"
        else:
            task = "regression"
    if task == "regression":
        return task, y, None, None
    if task == "multilabel":
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"{path}: dataset.task=multilabel needs 0/1 in every target "
                            f"column ({shown}); found {y[~np.isin(y, (0, 1))][0]}")
        return task, y.astype(np.int64), None, None
    if y.shape[1] != 1:
        raise ConfigError(f"dataset.target: {task} needs one target column, got {shown}; "
                          "valid choices: dataset.task=multilabel or regression")
    classes, labels = np.unique(y[:, 0], return_inverse=True)
    if classes.size < 2:
        raise DataError(f"{path}: target {shown} has one class only ({classes[0]:g} in every "
                        "row); a classifier needs two or more, or set dataset.task=regression")
    if task == "binary" and classes.size != 2:
        raise DataError(f"{path}: dataset.task=binary needs two classes, target {shown} has "
                        f"{classes.size}; valid choices: dataset.task=multiclass or regression")
    if task == "multiclass" and not integral:
        raise DataError(f"{path}: dataset.task=multiclass needs integer class labels, target "
                        f"{shown} has {y[y != np.round(y)][0]}; valid choices: "
                        "dataset.task=regression")
    return task, labels.astype(np.int64), int(classes.size), classes


def check_stratifiable(labels, classes, names, path) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    if counts.min() < 2:
        lonely = classes[int(np.argmin(counts))]
        raise DataError(f"{path}: class {lonely:g} of target {names[0]!r} has a single sample; "
                        "a stratified split needs two or more of each class; valid choices: "
                        "dataset.stratify=false, or more samples of that class")
