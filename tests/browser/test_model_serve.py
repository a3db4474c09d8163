"""The logged pyfunc model behind `mlflow models serve --env-manager local`, queried over
HTTP as a client would, answers what the in-memory network computes."""

from __future__ import annotations

import numpy as np
import pytest
from servers import free_port, mlflow_process, post_json

from mlplab.data.dataset import Dataset
from mlplab.data.scalers import Standardizer
from mlplab.nn.model import MLP
from mlplab.tracking.pyfunc import log_pyfunc_model

pytest.importorskip("mlflow")


def trained_regressor():
    rng = np.random.default_rng(7)
    raw_x = rng.uniform(0, 100, size=(160, 2))
    raw_y = np.column_stack([raw_x.sum(1), raw_x[:, 0] - raw_x[:, 1]])
    x_scaler, y_scaler = Standardizer().fit(raw_x), Standardizer().fit(raw_y)
    X, Y = x_scaler.transform(raw_x), y_scaler.transform(raw_y)
    model = MLP([2, 6, 2], ["tanh", "identity"], "mse_half", seed=7)
    for _ in range(50):
        model.forward(X.T)
        for param, grad in zip(model.params, model.backward(Y.T), strict=True):
            param -= 0.1 * grad
    dataset = Dataset("sum_diff", "regression", X[:120], Y[:120], X[120:], Y[120:],
                      x_scaler=x_scaler, y_scaler=y_scaler)
    return model, dataset, raw_x


def test_served_model_answers_in_original_units(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("serve", artifact_location=(tmp_path / "a").as_uri())
    run_id = client.create_run(experiment).info.run_id
    model, dataset, raw_x = trained_regressor()
    log_pyfunc_model(client, run_id, model, dataset)
    expected = y = dataset.y_scaler.inverse_transform(
        model.predict(dataset.x_scaler.transform(raw_x[:7]).T).T)

    port = free_port()
    args = ["models", "serve", "-m", f"runs:/{run_id}/model", "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with mlflow_process(args, ready_path="/ping", port=port, log_path=tmp_path / "serve.log",
                        env={"MLFLOW_TRACKING_URI": uri}) as base:
        split = {"dataframe_split": {"columns": ["x0", "x1"], "data": raw_x[:7].tolist()}}
        answer = post_json(base + "/invocations", split)
        records = {"dataframe_records": [{"x0": a, "x1": b} for a, b in raw_x[:7]]}
        again = post_json(base + "/invocations", records)
    rows = answer["predictions"]
    assert [sorted(r) for r in rows] == [["y0", "y1"]] * 7
    served = np.array([[r["y0"], r["y1"]] for r in rows])
    np.testing.assert_allclose(served, expected, rtol=1e-12, atol=1e-12)
    assert again["predictions"] == rows
    assert np.abs(y[:, 0]).mean() > 20  # a+b in data units, not standardized ones
