"""The pyfunc model: saved as plain data, loaded by MLflow, predicting exactly what the
in-memory network predicts, in the data's original units."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from mlplab.data.dataset import Dataset
from mlplab.data.scalers import MaxScaler, MinMaxScaler, Standardizer
from mlplab.errors import DataError
from mlplab.nn.model import MLP
from mlplab.tracking import pyfunc
from mlplab.tracking.pyfunc_loader import NetworkPredictor

mlflow = pytest.importorskip("mlflow")


def train(model: MLP, X, Y, steps=60, lr=0.05):
    """Plain gradient descent through the model's own forward/backward (the trainer is not
    under test here; the weights only need to be non-trivial)."""
    for _ in range(steps):
        model.forward(X)
        for param, grad in zip(model.params, model.backward(Y), strict=True):
            param -= lr * grad
    return model


def sum_diff_problem(seed=0):
    """The edenau regression in miniature: (a, b) in [0, 100) -> (a+b, a-b, |a-b|)."""
    rng = np.random.default_rng(seed)
    raw_x = rng.uniform(0, 100, size=(200, 2))
    raw_y = np.column_stack([raw_x.sum(1), raw_x[:, 0] - raw_x[:, 1],
                             np.abs(raw_x[:, 0] - raw_x[:, 1])])
    x_scaler, y_scaler = Standardizer().fit(raw_x[:150]), Standardizer().fit(raw_y[:150])
    X, Y = x_scaler.transform(raw_x), y_scaler.transform(raw_y)
    dataset = Dataset("sum_diff", "regression", X[:150], Y[:150], X[150:], Y[150:],
                      x_scaler=x_scaler, y_scaler=y_scaler)
    model = train(MLP([2, 8, 8, 3], ["relu", "relu", "identity"], "mse_half", seed=seed),
                  X[:150].T, Y[:150].T)
    return dataset, model, raw_x


def classification_problem(task, seed=0):
    rng = np.random.default_rng(seed)
    raw_x = rng.uniform(0, 255, size=(180, 4))
    score = raw_x[:, 0] - raw_x[:, 1] + 0.5 * raw_x[:, 2]
    if task == "binary":
        y, n_out, out_act, loss = (score > 60).astype(np.int64), 1, "sigmoid", \
            "binary_cross_entropy"
        targets = y[None, :].astype(float)
    else:
        y, n_out, out_act, loss = np.digitize(score, [0, 100]).astype(np.int64), 3, \
            "softmax", "softmax_cross_entropy"
        targets = np.eye(3)[y].T
    x_scaler = (MaxScaler if task == "binary" else MinMaxScaler)().fit(raw_x[:120])
    X = x_scaler.transform(raw_x)
    dataset = Dataset("toy", task, X[:120], y[:120], X[120:], y[120:],
                      n_classes=2 if task == "binary" else 3, x_scaler=x_scaler)
    model = train(MLP([4, 6, n_out], ["tanh", out_act], loss, seed=seed), X[:120].T,
                  targets[:, :120], lr=0.5)
    return dataset, model, raw_x


def in_memory(model, dataset, raw_x):
    """The oracle: the live network on scaled inputs, outputs mapped back to data units."""
    out = model.predict(dataset.x_scaler.transform(raw_x).T).T
    return dataset.to_original_units(out)


def save(tmp_path, model, dataset, raw_x, **kw):
    return pyfunc.save_pyfunc_model(tmp_path / "model", model, task=dataset.task,
                                    x_scaler=dataset.x_scaler, y_scaler=dataset.y_scaler,
                                    input_example=raw_x[:3], **kw)


def test_regression_predictions_in_original_units(tmp_path):
    dataset, model, raw_x = sum_diff_problem()
    loaded = mlflow.pyfunc.load_model(str(save(tmp_path, model, dataset, raw_x)))
    table = loaded.predict(pd.DataFrame(raw_x, columns=["x0", "x1"]))
    assert list(table.columns) == ["y0", "y1", "y2"]
    expected = in_memory(model, dataset, raw_x)
    np.testing.assert_allclose(table.to_numpy(), expected, rtol=1e-12, atol=1e-12)
    # Original units indeed: a+b for inputs in [0, 100) is of order 100, not 1.
    assert np.abs(table["y0"]).mean() > 20


def test_binary_probability_and_label(tmp_path):
    dataset, model, raw_x = classification_problem("binary")
    loaded = mlflow.pyfunc.load_model(str(save(tmp_path, model, dataset, raw_x)))
    table = loaded.predict(pd.DataFrame(raw_x, columns=[f"x{i}" for i in range(4)]))
    assert list(table.columns) == ["probability", "label"]
    proba = in_memory(model, dataset, raw_x)[:, 0]
    np.testing.assert_allclose(table["probability"], proba, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(table["label"], (proba >= 0.5).astype(int))
    assert table["label"].dtype == np.int64
    assert 0 < table["label"].mean() < 1  # the toy network separates something


def test_multiclass_probabilities_and_label(tmp_path):
    dataset, model, raw_x = classification_problem("multiclass")
    loaded = mlflow.pyfunc.load_model(str(save(tmp_path, model, dataset, raw_x)))
    table = loaded.predict(pd.DataFrame(raw_x, columns=[f"x{i}" for i in range(4)]))
    assert list(table.columns) == ["prob_0", "prob_1", "prob_2", "label"]
    proba = in_memory(model, dataset, raw_x)
    np.testing.assert_allclose(table[["prob_0", "prob_1", "prob_2"]], proba, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(table["label"], proba.argmax(axis=1))


def test_directory_holds_data_not_code(tmp_path):
    dataset, model, raw_x = sum_diff_problem()
    directory = save(tmp_path, model, dataset, raw_x, feature_names=["a", "b"],
                     output_names=["a+b", "a-b", "|a-b|"])
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                   if p.is_file())
    assert not [f for f in files if f.endswith((".py", ".pkl", ".pickle", ".cloudpickle"))]
    assert "data/network/weights.npz" in files and "data/network/spec.json" in files
    with np.load(directory / "data/network/weights.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["W2"], model.state_dict()["W2"])
        np.testing.assert_array_equal(npz["x_shift"], dataset.x_scaler.shift)
    info = mlflow.models.get_model_info(str(directory))
    assert info.flavors["python_function"]["loader_module"] == "mlplab.tracking.pyfunc_loader"
    # The input signature is one tensor (so plain arrays are accepted); the names of its
    # columns are the model's metadata.
    assert info.metadata["feature_names"] == ["a", "b"]
    assert info.signature.outputs.input_names() == ["a+b", "a-b", "|a-b|"]
    example = json.loads((directory / "input_example.json").read_text())
    np.testing.assert_allclose(example["data"], raw_x[:3])


def test_array_input_and_wrong_width(tmp_path):
    dataset, model, raw_x = sum_diff_problem()
    predictor = NetworkPredictor.from_directory(save(tmp_path, model, dataset, raw_x)
                                                / "data" / "network")
    np.testing.assert_allclose(predictor.predict(raw_x[:5]).to_numpy(),
                               in_memory(model, dataset, raw_x[:5]), rtol=1e-12, atol=1e-12)
    with pytest.raises(DataError, match="expected 2 columns"):
        predictor.network_outputs(np.zeros((4, 3)))


def test_corrupt_model_files_are_data_errors(tmp_path):
    dataset, model, raw_x = sum_diff_problem()
    network = save(tmp_path, model, dataset, raw_x) / "data" / "network"
    spec = json.loads((network / "spec.json").read_text())
    spec["sizes"] = [2, 5, 8, 3]
    (network / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match="layer 1 has shapes"):
        NetworkPredictor.from_directory(network)
    (network / "spec.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable mlplab pyfunc model"):
        NetworkPredictor.from_directory(network)


def test_weights_with_pickled_objects_are_refused(tmp_path):
    dataset, model, raw_x = sum_diff_problem()
    network = save(tmp_path, model, dataset, raw_x) / "data" / "network"
    arrays = dict(np.load(network / "weights.npz"))
    arrays["W1"] = np.array([{"payload": 1}], dtype=object)
    np.savez(network / "weights.npz", **arrays)
    with pytest.raises(DataError, match="unreadable"):
        NetworkPredictor.from_directory(network)


class AffineByHand:
    """A scaler mlplab does not know: transform(x) = (x - 3) / 2 per column."""

    def transform(self, X):
        return (np.asarray(X) - 3.0) / 2.0

    def inverse_transform(self, X):
        return np.asarray(X) * 2.0 + 3.0


class LogScaler:
    def transform(self, X):
        return np.log1p(np.abs(X))

    def inverse_transform(self, X):
        return np.expm1(X)


def test_affine_parameters_read_and_probed():
    shift, scale = pyfunc.affine_parameters(AffineByHand(), 3)
    np.testing.assert_allclose(shift, [3, 3, 3])
    np.testing.assert_allclose(scale, [2, 2, 2])
    data = np.array([[1.0, 4.0], [2.0, 8.0], [0.0, 6.0]])
    shift, scale = pyfunc.affine_parameters(MaxScaler().fit(data), 2)
    np.testing.assert_array_equal(shift, [0, 0])
    np.testing.assert_array_equal(scale, [8, 8])
    shift, scale = pyfunc.affine_parameters(MinMaxScaler().fit(data), 2)
    np.testing.assert_array_equal(shift, [0, 4])  # column minima
    np.testing.assert_array_equal(scale, [2, 4])  # column ranges
    with pytest.raises(ValueError, match="not affine"):
        pyfunc.affine_parameters(LogScaler(), 2)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory, migrated_store):
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("store")
    shutil.copy(migrated_store, root / "mlflow.db")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("pyfunc", artifact_location=(root / "art").as_uri())
    return client, experiment


def test_logged_model_loads_from_the_run(tracking):
    client, experiment = tracking
    dataset, model, raw_x = sum_diff_problem(seed=3)
    run = client.create_run(experiment)
    pyfunc.log_pyfunc_model(client, run.info.run_id, model, dataset)  # warm imports
    timings = []
    for _ in range(3):
        run = client.create_run(experiment)
        started = time.perf_counter()
        pyfunc.log_pyfunc_model(client, run.info.run_id, model, dataset)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 1.0, timings  # measured ~0.05 s on an idle machine
    with_tracking = {"MLFLOW_TRACKING_URI": client.tracking_uri}
    mp = pytest.MonkeyPatch()
    for key, value in with_tracking.items():
        mp.setenv(key, value)
    try:
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    finally:
        mp.undo()
    table = loaded.predict(pd.DataFrame(raw_x, columns=["x0", "x1"]))
    np.testing.assert_allclose(table.to_numpy(), in_memory(model, dataset, raw_x),
                               rtol=1e-12, atol=1e-12)
    names = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert "model/MLmodel" in names


def test_logged_model_takes_column_names_from_the_dataset(tracking, tmp_path):
    client, experiment = tracking
    dataset, model, raw_x = sum_diff_problem(seed=4)
    dataset.info = {"feature_names": ["a", "b"], "target_names": ["a+b", "a-b", "|a-b|"]}
    run_id = client.create_run(experiment).info.run_id
    pyfunc.log_pyfunc_model(client, run_id, model, dataset)
    local = client.download_artifacts(run_id, "model", str(tmp_path))
    info = mlflow.models.get_model_info(local)
    assert info.metadata["feature_names"] == ["a", "b"]  # see test_directory_holds_data_...
    assert info.signature.outputs.input_names() == ["a+b", "a-b", "|a-b|"]
    table = mlflow.pyfunc.load_model(local).predict(pd.DataFrame(raw_x, columns=["a", "b"]))
    np.testing.assert_allclose(table["a+b"], in_memory(model, dataset, raw_x)[:, 0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_model_of_a_saved_shape_is_written_as_mlflow_writes_it(tmp_path, monkeypatch, task):
    """The second model of a shape is written after the first one's directory, not by
    `mlflow.pyfunc.save_model`: it must be the directory MLflow writes for it."""
    problem = sum_diff_problem if task == "regression" else \
        (lambda seed: classification_problem(task, seed))
    monkeypatch.setattr(pyfunc, "_SAVED", {})
    (dataset, model, raw_x), (_, other, other_x) = problem(seed=0), problem(seed=1)
    save(tmp_path / "first", model, dataset, raw_x)
    assert len(pyfunc._SAVED) == 1
    quick = save(tmp_path / "quick", other, dataset, other_x)
    monkeypatch.setattr(pyfunc, "_SAVED", {})  # now the same model through MLflow
    reference = save(tmp_path / "reference", other, dataset, other_x)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != "MLmodel"}

    assert files(quick) == files(reference)  # data, input example, environment
    described = [yaml.safe_load((d / "MLmodel").read_text()) for d in (quick, reference)]
    for key in ("model_uuid", "utc_time_created"):
        assert described[0].pop(key) != described[1].pop(key)
    assert described[0] == described[1]  # signature, flavors, metadata, size
    loaded = mlflow.pyfunc.load_model(str(quick))
    columns = [f"x{i}" for i in range(raw_x.shape[1])]
    table = loaded.predict(pd.DataFrame(other_x, columns=columns))
    first_column = in_memory(other, dataset, other_x)[:, 0]
    np.testing.assert_allclose(table.iloc[:, 0], first_column, rtol=1e-12, atol=1e-12)
