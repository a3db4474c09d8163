"""`mlplab train` end to end, in a subprocess, into a temporary MLflow store."""

from __future__ import annotations

import numpy as np
import yaml
from cli_helpers import FAST, all_runs, client, error_lines, isolated, run_mlplab


def test_one_run_lands_in_mlflow_with_params_metrics_config_and_weights(store):
    proc = run_mlplab("train", *FAST, "trainer.epochs=7", "trainer.log_every=3",
                      "optimizer.lr=0.05", *isolated(store), cwd=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = all_runs(store)
    assert run.info.status == "FINISHED"
    # The preset, then each override that changes the model, once, with the value in effect.
    assert run.info.run_name == ("default/dataset.n_samples=200,trainer.epochs=7,"
                                 "trainer.log_every=3,optimizer.lr=0.05")
    params = run.data.params
    assert params["optimizer.lr"] == "0.05" and params["dataset.name"] == "moons"
    assert params["architecture.loss"] == "binary_cross_entropy"  # inferred, then logged
    assert params["architecture.output_activation"] == "sigmoid"
    assert "optimizer.lr=0.05" in run.data.tags["overrides"]
    mlflow = client(store)
    assert mlflow.get_experiment(run.info.experiment_id).name == "default"
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        steps = [m.step for m in mlflow.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == [1, 3, 6, 7], key  # epoch 1, every 3rd, and the last
    config = yaml.safe_load(open(mlflow.download_artifacts(run.info.run_id, "config.yaml",
                                                           str(store))))
    assert config["optimizer"]["lr"] == 0.05 and config["trainer"]["epochs"] == 7
    weights_file = mlflow.download_artifacts(run.info.run_id, "weights/final.npz",
                                             str(store))
    with np.load(weights_file, allow_pickle=False) as weights:
        shapes = {name: weights[name].shape for name in weights.files}
    assert shapes == {"W1": (16, 2), "b1": (16, 1), "W2": (16, 16), "b2": (16, 1),
                      "W3": (1, 16), "b3": (1, 1)}


def test_a_diverged_run_exits_1_naming_the_run_and_the_reason(store):
    proc = run_mlplab("train", *FAST, "dataset=sum_diff", "optimizer.lr=100",
                      "trainer.epochs=30", *isolated(store), cwd=store)
    assert proc.returncode == 1, proc.stderr[-3000:]
    [run] = all_runs(store)
    mine = [line for line in error_lines(proc) if line.startswith("mlplab:")]
    assert mine == [f"mlplab: error: run {run.info.run_id} ({run.info.run_name}) FAILED: "
                    f"{run.data.tags['failure_reason']}"]
    assert run.info.status == "FAILED"
    assert "epoch" in run.data.tags["failure_reason"]


def test_cfg_job_prints_the_composed_config_and_runs_nothing(tmp_path):
    proc = run_mlplab("train", "--cfg", "job", "optimizer=adam", "optimizer.lr=0.3",
                      "experiment=quick_moons", *isolated(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert printed["optimizer"]["name"] == "adam" and printed["optimizer"]["lr"] == 0.3
    assert printed["experiment_name"] == "quick_moons"
    assert printed["logger"]["tracking_uri"].endswith("mlflow.db")
    assert list(tmp_path.iterdir()) == []
