"""The pyfunc model of networks with normalization layers and dropout, and of multilabel
targets: it predicts what the live network evaluates (running statistics, no dropout)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_pyfunc import in_memory, save

from mlplab.data.dataset import Dataset
from mlplab.data.scalers import Standardizer
from mlplab.nn import MLP, get_optimizer
from mlplab.tracking import pyfunc
from mlplab.tracking.pyfunc_loader import NetworkPredictor

mlflow = pytest.importorskip("mlflow")


def _problem(task, norm, seed=0):
    rng = np.random.default_rng(seed)
    raw_x = rng.normal(3.0, 2.0, size=(160, 4))
    if task == "multilabel":
        y = np.column_stack([raw_x[:, 0] > 3, raw_x[:, 1] > raw_x[:, 2]]).astype(np.int64)
        targets, n_out, out_act, loss = y.T.astype(float), 2, "sigmoid", "binary_cross_entropy"
    else:
        y = (raw_x[:, 0] + raw_x[:, 3] > 6).astype(np.int64) + (raw_x[:, 1] > 4)
        targets, n_out, out_act, loss = np.eye(3)[y].T, 3, "softmax", "softmax_cross_entropy"
    scaler = Standardizer().fit(raw_x[:120])
    X = scaler.transform(raw_x)
    dataset = Dataset("toy", task, X[:120], y[:120], X[120:], y[120:],
                      n_classes=None if task == "multilabel" else 3, x_scaler=scaler)
    model = MLP([4, 8, 6, n_out], ["relu", "tanh", out_act], loss, seed=seed, norm=norm,
                dropout=0.2)
    opt = get_optimizer("adam", model.params, 0.05, param_names=model.param_names)
    for _ in range(30):
        model.train_step(np.ascontiguousarray(X[:120].T), targets[:, :120].copy(), opt)
    return dataset, model, raw_x


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_normalized_network_predicts_its_evaluation(tmp_path, norm):
    dataset, model, raw_x = _problem("multiclass", norm)
    loaded = mlflow.pyfunc.load_model(str(save(tmp_path, model, dataset, raw_x)))
    table = loaded.predict(pd.DataFrame(raw_x, columns=[f"x{i}" for i in range(4)]))
    expected = in_memory(model, dataset, raw_x)
    # the same operations in the same order; the matmul may block differently (W @ A vs dot)
    np.testing.assert_allclose(table[["prob_0", "prob_1", "prob_2"]], expected, rtol=1e-12,
                               atol=1e-14)
    with np.load(tmp_path / "model/data/network/weights.npz", allow_pickle=False) as npz:
        assert "dropout_rng" not in npz.files
        if norm == "batch":  # evaluation depends on them: they must travel
            np.testing.assert_array_equal(npz["norm1_running_var"],
                                          model.buffers["norm1_running_var"])


def test_multilabel_probabilities_and_labels(tmp_path):
    dataset, model, raw_x = _problem("multilabel", "none")
    loaded = mlflow.pyfunc.load_model(str(save(tmp_path, model, dataset, raw_x)))
    table = loaded.predict(pd.DataFrame(raw_x, columns=[f"x{i}" for i in range(4)]))
    assert list(table.columns) == ["prob_0", "prob_1", "label_0", "label_1"]
    proba = in_memory(model, dataset, raw_x)
    np.testing.assert_allclose(table[["prob_0", "prob_1"]], proba, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(table[["label_0", "label_1"]], (proba >= 0.5).astype(int))
    assert table["label_1"].dtype == np.int64


def test_norm_and_dropout_without_hidden_layers_change_nothing():
    """No hidden layer: nothing to normalize or drop; the exported network is plain."""
    model = MLP([3, 2], ["softmax"], "softmax_cross_entropy", norm="batch", dropout=0.3)
    X = np.random.default_rng(0).normal(size=(3, 5))
    spec, arrays = pyfunc.build_spec_and_arrays(model, "multiclass")
    assert spec["norm"] is None and sorted(arrays) == ["W1", "b1"]
    np.testing.assert_allclose(NetworkPredictor(spec, arrays).network_outputs(X.T),
                               model.predict(X).T, rtol=1e-12)
