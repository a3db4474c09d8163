"""Sweep plots: rows read back from real MLflow runs, the grouping behind the mean +- std
bands checked against the statistics module, and the figures a sweep's parent gets."""

from __future__ import annotations

import math
import shutil
import statistics

import numpy as np
import pytest
from test_plots import read_png

from mlplab.tracking import plots_sweep
from mlplab.tracking.plots_sweep import Axis

mlflow = pytest.importorskip("mlflow")

LRS = (0.001, 0.01, 0.1)


def fake_loss(lr, optimizer, seed):
    return abs(math.log10(lr) + 2) + (0.5 if optimizer == "sgd" else 0.0) + 0.01 * seed


@pytest.fixture(scope="module")
def sweep_children(tmp_path_factory, migrated_store):
    """A sweep's children as MLflow stores them: every param a string, plus bookkeeping
    params that differ per run (run_name) or not at all (dataset.name), one failed child."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    root = tmp_path_factory.mktemp("sweep_store")
    shutil.copy(migrated_store, root / "mlflow.db")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("sweep", artifact_location=(root / "a").as_uri())
    for lr in LRS:
        for optimizer in ("sgd", "adam"):
            for seed in range(3):
                name = f"lr={lr},opt={optimizer},seed={seed}"
                run = client.create_run(experiment, run_name=name)
                params = {"optimizer.lr": lr, "optimizer.name": optimizer, "seed": seed,
                          "run_name": name, "dataset.name": "moons"}
                loss = fake_loss(lr, optimizer, seed)
                client.log_batch(run.info.run_id,
                                 params=[Param(k, str(v)) for k, v in params.items()],
                                 metrics=[Metric("test_loss", 9.0, 0, 1),
                                          Metric("test_loss", loss, 0, 2)])
    failed = client.create_run(experiment, run_name="diverged")
    client.log_batch(failed.info.run_id, params=[Param("optimizer.lr", "1.0"),
                                                 Param("optimizer.name", "sgd"),
                                                 Param("seed", "0")])
    return client.search_runs([experiment])


def test_params_come_back_as_numbers():
    assert plots_sweep.parse_param("0.01") == 0.01
    assert plots_sweep.parse_param("3") == 3 and isinstance(plots_sweep.parse_param("3"), int)
    assert plots_sweep.parse_param("adam") == "adam"
    assert plots_sweep.parse_param("[16, 16]") == "[16, 16]"


def test_rows_from_runs(sweep_children):
    rows = plots_sweep.rows_from_runs(sweep_children, ["optimizer.lr", "seed"], "test_loss")
    assert len(rows) == 19
    diverged = [r for r in rows if r["run_name"] == "diverged"]
    assert len(diverged) == 1 and math.isnan(diverged[0]["test_loss"])
    row = next(r for r in rows if r["run_name"] == "lr=0.01,opt=adam,seed=2")
    assert row["optimizer.lr"] == 0.01 and row["seed"] == 2
    assert row["test_loss"] == pytest.approx(fake_loss(0.01, "adam", 2))  # the last value


def test_axis_positions():
    log_axis = Axis([0.001, 0.01, 0.1, 0.01])
    assert log_axis.log
    assert [log_axis.position(v) for v in (0.001, 0.01, 0.1)] == pytest.approx([0, 0.5, 1])
    assert [label for _, label in log_axis.ticks()] == ["0.001", "0.01", "0.1"]
    linear = Axis([1, 2, 5])
    assert not linear.log and linear.position(2) == pytest.approx(0.25)
    categories = Axis(["sgd", "adam", "rmsprop"])
    assert [categories.position(v) for v in ("adam", "rmsprop", "sgd")] == [0, 0.5, 1]
    assert Axis([4, 4]).position(4) == 0.5


def test_seed_groups_match_the_statistics_module(sweep_children):
    rows = plots_sweep.rows_from_runs(sweep_children, ["optimizer.lr", "optimizer.name"],
                                      "test_loss")
    rows = [r for r in rows if math.isfinite(r["test_loss"])]
    groups = plots_sweep.group_runs(rows, "optimizer.lr", "test_loss",
                                    series=["optimizer.name"])
    assert set(groups) == {("sgd",), ("adam",)}
    for (optimizer,), by_lr in groups.items():
        assert set(by_lr) == set(LRS)
        for lr, values in by_lr.items():
            expected = [fake_loss(lr, optimizer, seed) for seed in range(3)]
            mean, std = plots_sweep.mean_and_std(values)
            assert mean == pytest.approx(statistics.mean(expected))
            assert std == pytest.approx(statistics.stdev(expected))
    assert plots_sweep.mean_and_std([2.5]) == (2.5, 0.0)


def test_goodness_orders_by_mode():
    scores = np.array([0.3, 0.1, 0.2])
    assert int(np.argmax(plots_sweep.goodness_of(scores, "min"))) == 1
    assert int(np.argmax(plots_sweep.goodness_of(scores, "max"))) == 0
    with pytest.raises(ValueError, match="'min' or 'max'"):
        plots_sweep.goodness_of(scores, "best")


def test_figures_render(sweep_children, tmp_path):
    rows = plots_sweep.rows_from_runs(
        sweep_children, ["optimizer.lr", "optimizer.name", "seed"], "test_loss")
    two = read_png(plots_sweep.parallel_coordinates(
        rows, ["optimizer.lr", "optimizer.name"], "test_loss", tmp_path / "pc.png", mode="min"))
    three = read_png(plots_sweep.parallel_coordinates(
        rows, ["optimizer.lr", "optimizer.name", "seed"], "test_loss", tmp_path / "pc3.png"))
    assert three.shape[1] > two.shape[1]  # one more vertical axis, a wider figure
    for series, name in ((None, "a"), (["optimizer.name"], "b")):
        read_png(plots_sweep.metric_vs_param(rows, "optimizer.lr", "test_loss",
                                             tmp_path / f"{name}.png", series=series),
                 size=(550, 380))
    read_png(plots_sweep.metric_vs_param(rows, "optimizer.name", "test_loss",
                                         tmp_path / "c.png", group_seeds=False))
    with pytest.raises(ValueError, match="no run has a finite"):
        plots_sweep.metric_vs_param(rows, "optimizer.lr", "val_loss", tmp_path / "x.png")


def test_log_sweep_plots_finds_the_swept_params(sweep_children, tmp_path):
    written = plots_sweep.log_sweep_plots(sweep_children, None, "test_loss", "min", tmp_path)
    # run_name differs per child but is bookkeeping; dataset.name never varies; seed is
    # averaged over, not plotted against.
    assert sorted(p.name for p in written) == [
        "parallel_coordinates.png", "test_loss_vs_optimizer_lr.png",
        "test_loss_vs_optimizer_name.png"]
    for path in written:
        read_png(path)


def test_log_sweep_plots_opt_outs(sweep_children, tmp_path):
    assert plots_sweep.log_sweep_plots(sweep_children, None, "test_loss", "min", tmp_path,
                                       cfg_plots=False) == []
    only = plots_sweep.log_sweep_plots(sweep_children, ["optimizer.lr"], "test_loss", "min",
                                       tmp_path / "one", cfg_plots=["parallel_coordinates"])
    assert [p.name for p in only] == ["parallel_coordinates.png"]
    nothing_varies = plots_sweep.log_sweep_plots(sweep_children, ["dataset.name"], "test_loss",
                                                 "min", tmp_path / "none")
    assert nothing_varies == []
