"""The `Dataset` record every loader returns and the trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

TASKS = ("regression", "binary", "multiclass", "multilabel")


@dataclass
class Dataset:
    """Train/test (and optional validation) arrays, sample-major.

    `X_*` has shape (n_samples, n_features) in the run's float dtype. For regression `y_*`
    is (n_samples, n_targets) in that dtype, expressed in the units the model is trained on
    (after `y_scaler`); for classification it is (n_samples,) int64 class labels; for
    `multilabel` (a user's file with several 0/1 target columns, `dataset=file`) it is
    (n_samples, n_labels) int64 0/1, one column per sigmoid output.
    Scalers were fitted on the training part only; `y_scaler.inverse_transform` turns model
    outputs back into the data's own units.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    n_classes: int | None = None
    x_scaler: Any = None
    y_scaler: Any = None
    # Provenance worth logging: files read, checksums verified, seeds used, cache hits.
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the output layer: targets (or labels, for multilabel), 1 for binary,
        n_classes for multiclass."""
        if self.task in ("regression", "multilabel"):
            return int(self.y_train.shape[1])
        return 1 if self.task == "binary" else int(self.n_classes)

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def n_val(self) -> int:
        return 0 if self.X_val is None else int(self.X_val.shape[0])

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{'train': (X, y), 'val': ..., 'test': ...}, val only when present."""
        out = {"train": (self.X_train, self.y_train)}
        if self.X_val is not None:
            out["val"] = (self.X_val, self.y_val)
        out["test"] = (self.X_test, self.y_test)
        return out

    def to_original_units(self, y: np.ndarray) -> np.ndarray:
        """Regression outputs in the data's units (identity when targets are unscaled)."""
        return y if self.y_scaler is None else self.y_scaler.inverse_transform(y)

    def summary(self) -> str:
        parts = [f"{self.name} ({self.task})", f"{self.n_features} features",
                 f"train {self.n_train}", f"test {self.n_test}"]
        if self.X_val is not None:
            parts.append(f"val {self.n_val}")
        if self.n_classes:
            parts.append(f"{self.n_classes} classes")
        parts.append(str(self.X_train.dtype))
        return ", ".join(parts)
