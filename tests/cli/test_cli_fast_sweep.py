"""A fast sweep keeps everything a run records, and sweeping changes no run's results.

The sweep composes its jobs once per set of group choices, writes artifacts straight into
the local artifact store and draws no per-child PNG; each child must still have its run
under the parent, its params, its full metric histories, `config.yaml`, its weights and a
logged model that loads with `mlflow.pyfunc.load_model` and predicts as the engine does.
The same job run alone must give the same metrics and weights, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import all_runs, client, isolated, run_mlplab

from mlplab.config.compose import compose_job
from mlplab.job.build import build_model, load_data

mlflow = pytest.importorskip("mlflow")

JOB = ["experiment=quick_moons", "dataset.n_samples=200", "trainer.epochs=20"]
GRID = ["optimizer.lr=0.01,0.03", "seed=0,1"]
STEPS = [1, 10, 20]  # the first epoch, then every 10th (quick_moons: log_every 10)
METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def _children(store):
    runs = all_runs(store)
    [parent] = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def _histories(mlflow_client, run_id) -> dict:
    return {key: sorted((m.step, m.value) for m in mlflow_client.get_metric_history(run_id, key))
            for key in METRICS}


def _weights(mlflow_client, run_id, tmp) -> dict:
    path = mlflow_client.download_artifacts(run_id, "weights/final.npz", str(tmp))
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _job_config(child):
    return compose_job(*JOB, f"optimizer.lr={child.data.params['optimizer.lr']}",
                       f"seed={child.data.params['seed']}")


# A parallel sweep with models on, then each job again alone: minutes on a loaded machine.
@pytest.mark.slow
def test_a_fast_sweep_records_everything_and_changes_no_result(store, tmp_path, monkeypatch):
    proc = run_mlplab("train", "-m", "hydra/launcher=local_parallel", *JOB, *GRID,
                      *isolated(store), cwd=store, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _every_child_has_all_it_records(store, tmp_path, monkeypatch)
    _sweeping_changes_no_runs_metrics_or_weights(store, tmp_path)


def _every_child_has_all_it_records(store, tmp_path, monkeypatch):
    mlflow_client = client(store)
    parent, children = _children(store)
    assert parent.info.status == "FINISHED" and parent.data.tags.get("best_run_id")
    assert sorted((c.data.params["optimizer.lr"], c.data.params["seed"]) for c in children) \
        == [("0.01", "0"), ("0.01", "1"), ("0.03", "0"), ("0.03", "1")]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_client.tracking_uri)
    for child in children:
        run_id = child.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.params["trainer.epochs"] == "20"
        histories = _histories(mlflow_client, run_id)
        assert all([s for s, _ in points] == STEPS for points in histories.values())
        names = {a.path for a in mlflow_client.list_artifacts(run_id)}
        assert {"config.yaml", "weights", "model"} <= names and "plots" not in names
        (tmp_path / run_id).mkdir()
        logged = yaml.safe_load(Path(mlflow_client.download_artifacts(
            run_id, "config.yaml", str(tmp_path / run_id))).read_text())
        assert logged["optimizer"]["lr"] == float(child.data.params["optimizer.lr"])
        assert logged["seed"] == int(child.data.params["seed"])
        # The engine's network with the logged weights, on the job's own test split.
        cfg = _job_config(child)
        np.random.seed(cfg.seed)  # noqa: NPY002 -- as run_job draws the data
        dataset = load_data(cfg)
        network = build_model(cfg, dataset)
        network.load_state_dict(_weights(mlflow_client, run_id, tmp_path / run_id))
        expected = network.predict(np.ascontiguousarray(dataset.X_test.T)).T[:, 0]
        raw = dataset.X_test if dataset.x_scaler is None else \
            dataset.x_scaler.inverse_transform(dataset.X_test)
        for uri in (f"runs:/{run_id}/model",
                    f"models:/{child.outputs.model_outputs[0].model_id}"):
            predicted = mlflow.pyfunc.load_model(uri).predict(raw)["probability"]
            # Back to original units and scaled again inside the model: rounding only.
            np.testing.assert_allclose(predicted, expected, rtol=1e-10, atol=1e-14)


def _sweeping_changes_no_runs_metrics_or_weights(store, tmp_path):
    _, children = _children(store)
    child = next(c for c in children if c.data.params["optimizer.lr"] == "0.03"
                 and c.data.params["seed"] == "1")
    alone = run_mlplab("train", *JOB, "optimizer.lr=0.03", "seed=1", *isolated(store),
                       cwd=store, timeout=300)
    assert alone.returncode == 0, alone.stderr[-3000:]
    [single] = [r for r in all_runs(store) if "mlflow.parentRunId" not in r.data.tags
                and r.data.tags.get("mlplab.role") != "sweep"]
    mlflow_client = client(store)
    assert _histories(mlflow_client, child.info.run_id) == \
        _histories(mlflow_client, single.info.run_id)
    swept = _weights(mlflow_client, child.info.run_id, tmp_path / "swept")
    lone = _weights(mlflow_client, single.info.run_id, tmp_path / "alone")
    assert swept.keys() == lone.keys()
    assert all(np.array_equal(swept[k], lone[k]) for k in swept)
