"""A finished run's model and data the MLflow 3 way: a logged model linked to the run and to
its metrics, predicting from arrays and DataFrames alike, and the dataset as a run input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow_job import EXPERIMENT, small_job, two_blobs

from mlplab.tracking import MlflowRun, get_client
from mlplab.tracking.datasets import array_digest, split_arrays
from mlplab.tracking.params import compared_params

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def finished(uri):
    ds, model, trainer = small_job(8, log_every=2)
    config = {"seed": 0, "dataset": {"name": "two_blobs", "n_samples": 200}}
    with MlflowRun(EXPERIMENT, tracking_uri=uri, config=config, dataset=ds,
                   plots=False) as run:
        trainer.callbacks.append(run)
        result = trainer.fit(ds)
    return get_client(uri), run, ds, model, result


def test_the_model_is_a_logged_model_of_its_run_with_its_last_metrics(finished):
    client, run, _, _, result = finished
    logged = client.get_run(run.run_id)
    models = client.search_logged_models([logged.info.experiment_id])
    assert [m.source_run_id for m in models] == [run.run_id]
    [model] = models
    assert model.status.name == "READY" and model.name == "mlp"
    assert [o.model_id for o in logged.outputs.model_outputs] == [model.model_id]
    assert {m.key: m.value for m in model.metrics} == result.metrics
    assert {m.step for m in model.metrics} == {result.epochs_run}
    assert {m.dataset_name for m in model.metrics} == {"two_blobs"}
    for key, points in result.history.items():  # the run's history has no extra point
        history = client.get_metric_history(run.run_id, key)
        assert sorted((m.step, m.value) for m in history) == points


def test_predict_takes_an_array_and_a_dataframe_alike(finished, monkeypatch):
    client, run, ds, model, _ = finished
    [logged] = client.search_logged_models([client.get_run(run.run_id).info.experiment_id])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    for uri in (f"models:/{logged.model_id}", f"runs:/{run.run_id}/model"):
        loaded = mlflow.pyfunc.load_model(uri)
        from_array = loaded.predict(ds.X_test)
        from_frame = loaded.predict(pd.DataFrame(ds.X_test, columns=["x0", "x1"]))
        pd.testing.assert_frame_equal(from_array, from_frame)
        expected = model.predict(np.ascontiguousarray(ds.X_test.T)).T[:, 0]
        np.testing.assert_allclose(from_array["probability"], expected, rtol=1e-12)


def test_the_dataset_is_the_runs_input_with_the_digest_of_its_arrays(finished, uri):
    client, run, ds, _, _ = finished
    [entry] = client.get_run(run.run_id).inputs.dataset_inputs
    assert entry.dataset.name == "two_blobs"
    assert entry.dataset.digest == array_digest(split_arrays(ds))
    assert {t.key: t.value for t in entry.tags} == {"mlflow.data.context": "training"}
    profile = json.loads(entry.dataset.profile)
    assert (profile["train_rows"], profile["test_rows"], profile["val_rows"]) == (160, 40, 0)
    assert json.loads(entry.dataset.source)["tags"]["n_samples"] == "200"
    other = two_blobs(seed=1)  # other numbers, same shapes: another digest
    assert array_digest(split_arrays(other)) != entry.dataset.digest


def test_params_are_what_a_person_compares():
    config = {"seed": 3, "run_name": "a/b", "experiment_name": "e", "data_dir": "/x",
              "tags": {"owner": "me"}, "logger": {"name": "mlflow", "tracking_uri": None},
              "optimizer": {"name": "sgd", "lr": 0.1},
              "trainer": {"epochs": 5, "progress": False, "blas_threads": None, "resume": None},
              "trial": {"number": None, "study_name": None, "storage": None}}
    assert compared_params(config) == {"seed": "3", "optimizer.name": "sgd",
                                       "optimizer.lr": "0.1", "trainer.epochs": "5",
                                       "trainer.resume": "null"}  # a resume changes it
    config["trial"] = {"number": 4, "study_name": "s", "storage": "sqlite:///s.db"}
    assert compared_params(config)["trial.number"] == "4"  # an Optuna trial's runs are found
