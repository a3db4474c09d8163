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
- multiclass: `prob_0` ... `prob_{k-1}` (class probabilities) and `label` (argmax);
- multilabel: `prob_0` ... `prob_{k-1}` (each label's probability), then `label_0` ...
  `label_{k-1}` (0/1, probability >= 0.5).

A network with normalization layers (`spec["norm"]`) applies them in their evaluation
form (batch norm on its running statistics), with `mlplab.nn.normalization.normalize_eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlplab.errors import DataError
from mlplab.nn.activations import get_activation
from mlplab.nn.normalization import normalize_eval

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.npz"
SPEC_FORMAT = "mlplab-pyfunc/1"
TASKS = ("regression", "binary", "multiclass", "multilabel")


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
            self.layers.append((W.astype(self.dtype), b.astype(self.dtype), activation,
                                self._norm(spec.get("norm"), arrays, k, len(sizes) - 1)))
        self.x_shift, self.x_scale = arrays.get("x_shift"), arrays.get("x_scale")
        self.y_shift, self.y_scale = arrays.get("y_shift"), arrays.get("y_scale")

    def _norm(self, norm: dict | None, arrays, k: int, n_layers: int):
        """The keyword arguments of `normalize_eval` for layer k, None for no norm."""
        if not norm or k == n_layers:  # the output layer is never normalized
            return None
        names = ["gain", "bias"] + (["running_mean", "running_var"]
                                    if norm["kind"] == "batch" else [])
        try:
            found = {name: arrays[f"norm{k}_{name}"].astype(self.dtype) for name in names}
        except KeyError as error:
            raise DataError(f"{WEIGHTS_FILE}: no {error} for the {norm['kind']} norm of "
                            f"layer {k}") from error
        return {"kind": norm["kind"], "eps": float(norm["eps"]), **found}

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
        for W, b, activation, norm in self.layers:
            Z = W @ A + b
            if norm is not None:
                Z = normalize_eval(norm["kind"], Z, norm["gain"], norm["bias"],
                                   norm.get("running_mean"), norm.get("running_var"),
                                   norm["eps"])
            A = activation.forward(Z)
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
        if self.task == "multilabel":
            return np.column_stack([out, (out >= 0.5).astype(np.float64)])
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
        for column in table.columns:
            if column == "label" or column.startswith("label_"):
                table[column] = table[column].astype(np.int64)
        return table


def _load_pyfunc(data_path):
    """Called by `mlflow.pyfunc.load_model` with the model's `data` directory."""
    return NetworkPredictor.from_directory(data_path)
