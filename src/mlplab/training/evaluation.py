"""Arrays in the engine's layout, targets encoded for the loss, and metrics on a split.

Datasets are sample-major (n, features); the engine works on (features, n). Each split is
transposed and cast once, before the first epoch, so the epoch loop never converts data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlplab.constraints import check
from mlplab.errors import ConfigError
from mlplab.nn.metrics import METRIC, METRICS, exact_match_accuracy

# Evaluation forwards at most this many samples at once, so evaluating a large split
# (MNIST's 60,000) does not allocate activations for all of it per layer.
EVAL_CHUNK = 10_000
SPLITS = ("train", "test", "val")  # metric keys are <split>_<metric>, e.g. test_loss
CLASSIFICATION_TASKS = ("binary", "multiclass", "multilabel")  # tasks that report accuracy


@dataclass
class Split:
    name: str
    X: np.ndarray  # (features, n), C-contiguous, model dtype
    Y: np.ndarray  # (outputs, n) encoded targets, model dtype

    @property
    def n(self) -> int:
        return self.X.shape[1]


def encode_targets(y: np.ndarray, task: str, n_outputs: int, dtype) -> np.ndarray:
    """binary: (1, n) 0/1; multiclass: one-hot (K, n); regression and multilabel: (k, n)."""
    if task in ("regression", "multilabel"):
        y = np.asarray(y, dtype=dtype)
        return np.ascontiguousarray((y.reshape(-1, 1) if y.ndim == 1 else y).T)
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    if task == "binary":
        return (labels == 1).astype(dtype).reshape(1, -1)
    onehot = np.zeros((n_outputs, labels.size), dtype=dtype)
    onehot[labels, np.arange(labels.size)] = 1
    return onehot


def prepare_splits(dataset, model) -> dict[str, Split]:
    """Every split of `dataset` in the engine's layout, checked against the model's sizes."""
    n_in, n_out = model.sizes[0], model.sizes[-1]
    if dataset.n_features != n_in:
        raise ConfigError(f"architecture: the model takes {n_in} inputs but dataset "
                          f"{dataset.name!r} has {dataset.n_features} features")
    if dataset.n_outputs != n_out:
        raise ConfigError(f"architecture: the model has {n_out} outputs but dataset "
                          f"{dataset.name!r} ({dataset.task}) needs {dataset.n_outputs}")
    return {name: Split(name, np.ascontiguousarray(np.asarray(X, dtype=model.dtype).T),
                        encode_targets(y, dataset.task, n_out, model.dtype))
            for name, (X, y) in dataset.splits().items()}


def metric_names(classifier: bool, extras=()) -> list[str]:
    """The metrics a run reports on every split besides its loss: accuracy for a
    classifier, then the extras asked for (accuracy only once, and never for a regressor,
    whose outputs are not class scores)."""
    return (["accuracy"] if classifier else []) + [n for n in extras or () if n != "accuracy"]


def metric_keys(splits, names) -> list[str]:
    """The keys `<split>_<metric>` a run reports: the loss and `names` on every split."""
    return [f"{split}_{name}" for split in splits for name in ("loss", *names)]


def resolve_metrics(names, classifier: bool, task: str | None = None) -> dict[str, callable]:
    """{name: fn(A, Y) -> float}: accuracy for classifiers plus the requested extras.
    A multilabel task's accuracy is exact match (every label of a sample right)."""
    wanted = metric_names(classifier, names)
    for name in wanted:
        check("trainer.metrics", name, METRIC)
    found = {name: METRICS[name] for name in wanted}
    if task == "multilabel" and "accuracy" in found:
        found["accuracy"] = exact_match_accuracy
    return found


class Evaluator:
    """Loss and metrics of a model on a split, under keys `<split>_<metric>`."""

    def __init__(self, model, metrics: dict):
        self.model = model
        self.metrics = metrics

    def from_output(self, prefix: str, loss: float, A: np.ndarray, Y: np.ndarray) -> dict:
        """Metrics from an output the caller already has (e.g. a training step's forward)."""
        out = {f"{prefix}_loss": float(loss)}
        for name, fn in self.metrics.items():
            out[f"{prefix}_{name}"] = fn(A, Y)
        return out

    def evaluate(self, split: Split, prefix: str | None = None) -> dict:
        """Forward the whole split (in chunks) with the current weights."""
        prefix = prefix or split.name
        if split.n <= EVAL_CHUNK:
            return self._chunk(prefix, split.X, split.Y)
        totals: dict[str, float] = {}
        for start in range(0, split.n, EVAL_CHUNK):
            X = split.X[:, start:start + EVAL_CHUNK]
            Y = split.Y[:, start:start + EVAL_CHUNK]
            for key, value in self._chunk(prefix, X, Y).items():
                totals[key] = totals.get(key, 0.0) + value * X.shape[1]
        return {key: value / split.n for key, value in totals.items()}

    def _chunk(self, prefix: str, X: np.ndarray, Y: np.ndarray) -> dict:
        model = self.model
        A = model.forward(X)
        loss = model.loss_fn.value(model.layers[-1].Z, A, Y)
        return self.from_output(prefix, loss, A, Y)


class RunningMean:
    """Sample-weighted means of per-batch metrics over one epoch ("running" train metrics)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict, n: int) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * n
        self.count += n

    def means(self) -> dict:
        return {key: total / self.count for key, total in self.sums.items()}


def first_non_finite(metrics: dict) -> tuple[str, float] | None:
    for key, value in metrics.items():
        if not math.isfinite(value):
            return key, value
    return None
