"""MlflowRun against a real SQLite store in tmp_path: what lands in MLflow, and how runs end."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow_job import EXPERIMENT, small_job

from mlplab.tracking import MlflowRun, get_client
from mlplab.tracking.store import project_root

HERE = Path(__file__).parent

CONFIG = {"seed": 0, "experiment_name": EXPERIMENT,
          "architecture": {"hidden": [8], "activation": "relu"},
          "optimizer": {"name": "sgd", "lr": 0.1, "momentum": None},
          "trainer": {"epochs": 10, "batch_size": None, "early_stopping": {}}}


def _download(client, run_id, path, tmp_path):
    return client.download_artifacts(run_id, path, str(tmp_path))


def test_a_run_records_params_tags_metrics_and_artifacts(uri, tmp_path):
    ds, model, trainer = small_job(10, log_every=3, checkpoint_every=5)
    with MlflowRun(EXPERIMENT, tracking_uri=uri, run_name="moons/lr=0.1", config=CONFIG,
                   overrides=["optimizer.lr=0.1"], plots=False) as run:
        trainer.callbacks.append(run)
        result = trainer.fit(ds)
    client = get_client(uri)
    logged = client.get_run(run.run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "moons/lr=0.1"
    assert logged.data.params == {
        "seed": "0", "experiment_name": EXPERIMENT, "architecture.hidden": "[8]",
        "architecture.activation": "relu", "optimizer.name": "sgd", "optimizer.lr": "0.1",
        "optimizer.momentum": "null", "trainer.epochs": "10", "trainer.batch_size": "null",
        "trainer.early_stopping": "{}"}
    commit = logged.data.tags["git_commit"]  # HEAD moves while others commit: check it is one
    kind = subprocess.run(["git", "cat-file", "-t", commit], cwd=project_root(),
                          capture_output=True, text=True).stdout.strip()
    assert kind == "commit" and len(commit) == 40
    assert logged.data.tags["overrides"] == "optimizer.lr=0.1"
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        history = client.get_metric_history(run.run_id, key)
        assert sorted((m.step, m.value) for m in history) == result.history[key]
        assert [step for step, _ in result.history[key]] == [1, 3, 6, 9, 10]
    paths = {f.path for f in client.list_artifacts(run.run_id)}
    assert {"config.yaml", "weights", "checkpoints"} <= paths
    assert [f.path for f in client.list_artifacts(run.run_id, "checkpoints")] == [
        "checkpoints/epoch_000005.npz", "checkpoints/epoch_000010.npz"]
    config = yaml.safe_load(open(_download(client, run.run_id, "config.yaml", tmp_path)))
    assert config == CONFIG
    with np.load(_download(client, run.run_id, "weights/final.npz", tmp_path),
                 allow_pickle=False) as weights:
        assert sorted(weights.files) == ["W1", "W2", "b1", "b2"]
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(weights[name], value)
    # the artifacts sit beside the store, not in the project's outputs/
    experiment = client.get_experiment(logged.info.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts" / EXPERIMENT).as_uri()
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_plots_and_model_are_logged_when_the_dataset_is_given(uri):
    pytest.importorskip("mlplab.tracking.plots")
    ds, _, trainer = small_job(5)
    with MlflowRun(EXPERIMENT, tracking_uri=uri, dataset=ds) as run:
        trainer.callbacks.append(run)
        trainer.fit(ds)
    client = get_client(uri)
    plots = {f.path for f in client.list_artifacts(run.run_id, "plots")}
    assert "plots/learning_curves.png" in plots
    assert "model" in {f.path for f in client.list_artifacts(run.run_id)}


@pytest.mark.parametrize("error, status", [(RuntimeError("boom"), "FAILED"),
                                           (KeyboardInterrupt(), "KILLED")])
def test_no_run_is_left_running_after_an_exception(uri, error, status):
    ds, _, trainer = small_job(3, log_every=1)
    with pytest.raises(type(error)), MlflowRun(EXPERIMENT, tracking_uri=uri) as run:
        trainer.callbacks.append(run)
        trainer.fit(ds)
        raise error
    logged = get_client(uri).get_run(run.run_id)
    assert logged.info.status == status
    assert logged.info.end_time is not None
    assert logged.data.tags["failure_reason"].startswith(type(error).__name__)
    assert len(get_client(uri).get_metric_history(run.run_id, "test_loss")) == 3


def test_divergence_fails_the_run_and_keeps_the_metrics_so_far(uri):
    ds, _, trainer = small_job(400, log_every=2)
    trainer.optimizer.lr = 1e6
    trainer.model.params[0][...] *= 1e3
    with MlflowRun(EXPERIMENT, tracking_uri=uri, plots=False) as run:
        trainer.callbacks.append(run)
        result = trainer.fit(ds)
    assert result.status == "FAILED"
    client = get_client(uri)
    logged = client.get_run(run.run_id)
    assert logged.info.status == "FAILED"
    assert logged.data.tags["failure_reason"] == result.reason
    steps = sorted(m.step for m in client.get_metric_history(run.run_id, "train_loss"))
    assert steps == [e for e, _ in result.history["train_loss"]] and steps[-1] == result.epochs_run


def test_early_stop_is_tagged(uri):
    class StopAtThree:
        def on_train_start(self, trainer):
            self.trainer = trainer

        def on_epoch_end(self, epoch, metrics):
            if epoch == 3:
                self.trainer.request_stop("pruned by the test at epoch 3")

    ds, _, trainer = small_job(50, log_every=1, callbacks=[StopAtThree()])
    with MlflowRun(EXPERIMENT, tracking_uri=uri, plots=False) as run:
        trainer.callbacks.append(run)
        trainer.fit(ds)
    tags = get_client(uri).get_run(run.run_id).data.tags
    assert tags["stop_reason"] == "pruned by the test at epoch 3" and tags["pruned"] == "true"
    assert tags["objective_metric"] == "test_loss"
    assert tags["objective"] == repr(trainer.result.metrics["test_loss"])


def test_a_resumed_run_continues_the_same_mlflow_run(uri, tmp_path):
    first_config = {"trainer": {"epochs": 6}, "seed": 0}
    ds, _, trainer = small_job(6, log_every=2, checkpoint_every=6, checkpoint_dir=tmp_path)
    with MlflowRun(EXPERIMENT, tracking_uri=uri, config=first_config, plots=False) as run:
        trainer.callbacks.append(run)
        trainer.fit(ds)
    ds, _, trainer = small_job(10, log_every=2)
    second_config = {"trainer": {"epochs": 10, "resume": True}, "seed": 0}
    with MlflowRun(EXPERIMENT, tracking_uri=uri, config=second_config, plots=False,
                   resume_run_id=run.run_id) as resumed:
        trainer.callbacks.append(resumed)
        trainer.fit(ds, resume_from=tmp_path / "epoch_000006.npz")
    client = get_client(uri)
    logged = client.get_run(run.run_id)
    assert resumed.run_id == run.run_id and logged.info.status == "FINISHED"
    assert logged.data.params == {"trainer.epochs": "6", "seed": "0", "trainer.resume": "true"}
    assert logged.data.tags["resume_changed_params"] == "trainer.epochs=10"
    steps = sorted(m.step for m in client.get_metric_history(run.run_id, "test_loss"))
    assert steps == [1, 2, 4, 6, 8, 10]


def test_metrics_are_buffered_but_flushed_at_checkpoints(uri, tmp_path):
    ds, _, trainer = small_job(8, log_every=1, checkpoint_every=4)

    class CountAtCheckpoint:
        def on_checkpoint(self, epoch, path):
            self.seen = len(get_client(uri).get_metric_history(run.run_id, "test_loss"))

    counter = CountAtCheckpoint()
    with MlflowRun(EXPERIMENT, tracking_uri=uri, plots=False, flush_seconds=3600) as run:
        trainer.callbacks += [run, counter]
        trainer.fit(ds)
    assert counter.seen == 8  # everything up to the second checkpoint was written


def test_sigterm_ends_a_running_job_as_killed_with_a_checkpoint(uri, tmp_path):
    ready = tmp_path / "ready"
    job = subprocess.Popen([sys.executable, str(HERE / "mlflow_job.py"), "long", uri, str(ready)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not ready.exists():
        assert job.poll() is None, job.communicate()
        assert time.monotonic() < deadline, "the job never started training"
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    status, epochs = out.split()[-2:]
    assert status == "KILLED"
    client = get_client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["stop_reason"].startswith("interrupted by SIGTERM")
    checkpoints = [f.path for f in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert checkpoints == [f"checkpoints/epoch_{int(epochs):06d}.npz"]
    evaluated = sorted(m.step for m in client.get_metric_history(run.info.run_id, "test_loss"))
    assert evaluated[0] == 1 and evaluated[-1] <= int(epochs)


def test_params_are_in_the_store_as_soon_as_the_run_exists(uri):
    """A run SIGKILLed before its first metrics flush still says what it trained: its
    params are written when it is created, not with its first metrics."""
    params = {f"group.key{i:03d}": str(i) for i in range(150)}  # more than one batch takes
    with MlflowRun(EXPERIMENT, tracking_uri=uri, params=params, plots=False,
                   flush_seconds=3600) as run:
        assert get_client(uri).get_run(run.run_id).data.params == params
