"""Load-time half of mlplab's MLflow pyfunc model: plain data in, predictions out.

A saved model directory holds only data: `data/spec.json` (layer sizes, activation names,
task, column names) and `data/weights.npz` (W1, b1, ..., and the affine scalers), read with
`allow_pickle=False`. MLflow finds this module through the `loader_module` entry of the
MLmodel file and calls `_load_pyfunc(data_path)`; the code that runs is therefore the
installed mlplab, never a file shipped inside the (possibly untrusted) artifact.

Predictions are in the dataset's original units: inputs are scaled with the training
input scaler before the forward pass and regression outputs are mapped back with the
inverse of the target scaler. Output columns:

- regression: one float column per output (`output_names`, default `y0`, `y1`, ...);
- binary: `probability` (P(class 1)) and `label` (0/1, probability >= 0.5);
- multiclass: `prob_0` ... `prob_{k-1}` (class probabilities) and `label` (argmax).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlplab.errors import DataError
from mlplab.nn.activations import get_activation

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.npz"
SPEC_FORMAT = "mlplab-pyfunc/1"
TASKS = ("regression", "binary", "multiclass")


class NetworkPredictor:
    """Forward pass of a trained MLP plus the scalers, rebuilt from arrays and a spec."""

    def __init__(self, spec: dict, arrays: dict[str, np.ndarray]):
        if spec.get("format") != SPEC_FORMAT or spec.get("task") not in TASKS:
            raise DataError(f"{SPEC_FILE}: not an mlplab pyfunc spec (format {SPEC_FORMAT})")
        self.spec = spec
        self.task = spec["task"]
        self.dtype = np.dtype(spec["dtype"])
        self.feature_names = list(spec["feature_names"])
        self.output_columns = list(spec["output_columns"])
        sizes = spec["sizes"]
        self.layers = []
        for k, act in enumerate(spec["activations"], start=1):
            W, b = arrays[f"W{k}"], arrays[f"b{k}"]
            if W.shape != (sizes[k], sizes[k - 1]) or b.shape != (sizes[k], 1):
                raise DataError(f"{WEIGHTS_FILE}: layer {k} has shapes {W.shape}, {b.shape}; "
                                f"spec.json says sizes {sizes}")
            activation = get_activation(act["name"], **act.get("params", {}))
            self.layers.append((W.astype(self.dtype), b.astype(self.dtype), activation))
        self.x_shift, self.x_scale = arrays.get("x_shift"), arrays.get("x_scale")
        self.y_shift, self.y_scale = arrays.get("y_shift"), arrays.get("y_scale")

    @classmethod
    def from_directory(cls, directory) -> NetworkPredictor:
        directory = Path(directory)
        try:
            spec = json.loads((directory / SPEC_FILE).read_text())
            with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"{directory}: unreadable mlplab pyfunc model ({error})") from error
        return cls(spec, arrays)

    def network_outputs(self, X: np.ndarray) -> np.ndarray:
        """Raw output-layer activations, sample-major `(n, n_out)`, for original-unit X."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise DataError(f"model input: expected {len(self.feature_names)} columns "
                            f"({', '.join(self.feature_names)}), got shape {X.shape}")
        if self.x_shift is not None:
            X = (X - self.x_shift) / self.x_scale
        A = np.ascontiguousarray(X.T, dtype=self.dtype)
        for W, b, activation in self.layers:
            A = activation.forward(W @ A + b)
        return np.asarray(A.T, dtype=np.float64)

    def predict_array(self, X) -> np.ndarray:
        """Predictions as one float array `(n, len(output_columns))` in original units."""
        out = self.network_outputs(X)
        if self.task == "regression":
            if self.y_shift is not None:
                out = out * self.y_scale + self.y_shift
            return out
        if self.task == "binary":
            proba = out[:, -1]  # the single sigmoid unit, or the class-1 softmax unit
            return np.column_stack([proba, (proba >= 0.5).astype(np.float64)])
        return np.column_stack([out, out.argmax(axis=1).astype(np.float64)])

    def predict(self, model_input, params=None):
        """MLflow's entry point: a DataFrame (or array) in, a DataFrame out."""
        import pandas as pd

        if isinstance(model_input, pd.DataFrame):
            missing = [c for c in self.feature_names if c not in model_input.columns]
            X = model_input[self.feature_names] if not missing else model_input
            X = X.to_numpy(dtype=np.float64)
        else:
            X = np.asarray(model_input, dtype=np.float64).reshape(-1, len(self.feature_names))
        table = pd.DataFrame(self.predict_array(X), columns=self.output_columns)
        if "label" in table.columns:
            table["label"] = table["label"].astype(np.int64)
        return table


def _load_pyfunc(data_path):
    """Called by `mlflow.pyfunc.load_model` with the model's `data` directory."""
    return NetworkPredictor.from_directory(data_path)
