"""`mlplab runs`: the table of logged runs, filtered, sorted and grouped over seeds."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from cli_helpers import client, store_uri

from mlplab.cli import main
from mlplab.cli.runs import mlflow_filter

# (lr, seed, test_loss, test_accuracy) of four runs, and one sweep parent to leave out.
RUNS = [("0.1", "0", 1.0, 0.50), ("0.1", "1", 3.0, 0.70),
        ("0.2", "0", 2.0, 0.90), ("0.2", "1", 2.0, 0.80)]


@pytest.fixture
def logged(store):
    mlflow = client(store)
    experiment = mlflow.create_experiment("study")
    for lr, seed, loss, accuracy in RUNS:
        run = mlflow.create_run(experiment, run_name=f"lr={lr},seed={seed}")
        run_id = run.info.run_id
        for key, value in {"optimizer.lr": lr, "seed": seed, "dataset.name": "moons",
                           "logger.tracking_uri": store_uri(store)}.items():
            mlflow.log_param(run_id, key, value)
        mlflow.log_metric(run_id, "test_loss", loss + 5.0, step=1)  # an earlier epoch
        mlflow.log_metric(run_id, "test_loss", loss, step=2)
        mlflow.log_metric(run_id, "test_accuracy", accuracy, step=2)
        mlflow.set_terminated(run_id, "FINISHED")
    parent = mlflow.create_run(experiment, run_name="sweep", tags={"mlplab.role": "sweep"})
    mlflow.log_metric(parent.info.run_id, "best_test_loss", 1.0)
    return store


def _csv(capsys, *args):
    assert main(["runs", *args]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_table_lists_each_run_with_the_varying_params_and_last_metrics(logged, capsys):
    rows = _csv(capsys, "--tracking-uri", store_uri(logged), "--experiment", "study", "--csv",
                "--sort", "test_loss")
    assert [(r["optimizer.lr"], r["seed"], float(r["test_loss"])) for r in rows] == [
        ("0.1", "0", 1.0), ("0.2", "0", 2.0), ("0.2", "1", 2.0), ("0.1", "1", 3.0)]
    assert "dataset.name" not in rows[0]  # the same in every run: not a column
    assert "logger.tracking_uri" not in rows[0]
    assert all(r["status"] == "FINISHED" for r in rows)  # the sweep parent is left out


def test_group_by_gives_mean_and_sample_std_over_the_other_params(logged, capsys):
    rows = _csv(capsys, "--tracking-uri", store_uri(logged), "--group-by", "optimizer.lr",
                "--csv", "--sort=-test_accuracy")
    assert [r["optimizer.lr"] for r in rows] == ["0.2", "0.1"]  # accuracy 0.85 before 0.60
    by_lr = {r["optimizer.lr"]: r for r in rows}
    # lr 0.1: losses 1 and 3 -> mean 2, sample std sqrt(2); lr 0.2: 2 and 2 -> 2 and 0.
    assert int(by_lr["0.1"]["n"]) == 2
    assert float(by_lr["0.1"]["test_loss"]) == pytest.approx(2.0)
    assert float(by_lr["0.1"]["test_loss_std"]) == pytest.approx(math.sqrt(2))
    assert float(by_lr["0.2"]["test_loss_std"]) == 0.0
    assert float(by_lr["0.2"]["test_accuracy"]) == pytest.approx(0.85)


def test_text_and_markdown_show_mean_plus_minus_std(logged, capsys):
    assert main(["runs", "--tracking-uri", store_uri(logged), "--group-by", "optimizer.lr",
                 "--markdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| optimizer.lr | n | test_accuracy | test_loss |"
    assert "| 0.1 | 2 | 0.6 ± 0.141421 | 2 ± 1.41421 |" in out
    assert main(["runs", "--tracking-uri", store_uri(logged)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["run_id", "experiment", "run_name", "status", "optimizer.lr",
                               "seed", "test_accuracy", "test_loss"]
    assert len(text) == 1 + len(RUNS)


def test_filter_accepts_the_short_form(logged, capsys):
    rows = _csv(capsys, "--tracking-uri", store_uri(logged), "--filter",
                "params.optimizer.lr=0.1", "--csv")
    assert sorted(r["seed"] for r in rows) == ["0", "1"]
    rows = _csv(capsys, "--tracking-uri", store_uri(logged), "--filter",
                "metrics.test_accuracy>0.75 and params.seed=0", "--csv")
    assert [r["run_name"] for r in rows] == ["lr=0.2,seed=0"]


def test_short_filters_become_mlflow_syntax():
    assert mlflow_filter(["params.optimizer.lr=0.1"]) == "params.`optimizer.lr` = '0.1'"
    assert mlflow_filter(["metrics.test_loss<0.5", "seed!=3"]) == (
        "metrics.`test_loss` < 0.5 and params.`seed` != '3'")
    assert mlflow_filter(["params.`a.b` = 'x'"]) == "params.`a.b` = 'x'"  # left alone


def test_unknown_experiment_or_sort_key_is_a_one_line_error(logged, capsys):
    assert main(["runs", "--tracking-uri", store_uri(logged), "--experiment", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlplab: error: --experiment: no experiment 'nope'") and "study" in err
    assert main(["runs", "--tracking-uri", store_uri(logged), "--sort", "speed"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlplab: error: --sort: no column 'speed'") and "test_loss" in err


def _run(mlflow, experiment, name, loss, *, status="FINISHED", tags=None, params=None):
    run_id = mlflow.create_run(experiment, run_name=name, tags=tags or {}).info.run_id
    for key, value in (params or {}).items():
        mlflow.log_param(run_id, key, value)
    mlflow.log_metric(run_id, "test_loss", loss, step=1)
    if status != "RUNNING":
        mlflow.set_terminated(run_id, status)
    return run_id


def test_sort_comes_before_the_limit(store, capsys):
    mlflow = client(store)
    experiment = mlflow.create_experiment("study")
    for i, loss in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]):  # the newest are the worst
        _run(mlflow, experiment, f"run{i}", loss)
    rows = _csv(capsys, "--tracking-uri", store_uri(store), "--csv", "--sort", "test_loss",
                "--limit", "2")
    assert [r["run_name"] for r in rows] == ["run0", "run1"]


def _sweep(mlflow, experiment, name, losses):
    parent = mlflow.create_run(experiment, run_name=name, tags={"mlplab.role": "sweep"})
    parent_id = parent.info.run_id
    for i, loss in enumerate(losses):
        _run(mlflow, experiment, f"{name}/child{i}", loss, tags={"mlflow.parentRunId": parent_id})
    mlflow.set_terminated(parent_id, "FINISHED")
    return parent_id


def test_sweep_keeps_the_children_of_one_sweep(store, capsys):
    mlflow = client(store)
    experiment = mlflow.create_experiment("study")
    first = _sweep(mlflow, experiment, "first", [0.3, 0.2])
    _run(mlflow, experiment, "single", 0.1)
    _sweep(mlflow, experiment, "second", [0.5, 0.4, 0.6])
    latest = _csv(capsys, "--tracking-uri", store_uri(store), "--csv", "--sweep", "latest")
    assert sorted(r["run_name"] for r in latest) == [f"second/child{i}" for i in range(3)]
    by_id = _csv(capsys, "--tracking-uri", store_uri(store), "--csv", "--sweep", first[:8])
    assert sorted(r["run_name"] for r in by_id) == ["first/child0", "first/child1"]


def test_group_by_averages_completed_runs_unless_pruned_ones_are_asked_for(store, capsys):
    mlflow = client(store)
    experiment = mlflow.create_experiment("study")
    lr = {"optimizer.lr": "0.1"}
    _run(mlflow, experiment, "done", 1.0, params=lr)
    _run(mlflow, experiment, "pruned", 5.0, params=lr, tags={"pruned": "true"})
    _run(mlflow, experiment, "failed", 7.0, params=lr, status="FAILED")
    _run(mlflow, experiment, "running", 9.0, params=lr, status="RUNNING")
    [row] = _csv(capsys, "--tracking-uri", store_uri(store), "--csv", "--group-by",
                 "optimizer.lr")
    assert (row["n"], float(row["test_loss"])) == ("1", 1.0)
    [row] = _csv(capsys, "--tracking-uri", store_uri(store), "--csv", "--group-by",
                 "optimizer.lr", "--include-pruned")
    assert (row["n"], float(row["test_loss"])) == ("4", 5.5)
    rows = _csv(capsys, "--tracking-uri", store_uri(store), "--csv")
    assert {r["run_name"]: r["status"] for r in rows}["pruned"] == "FINISHED (pruned)"


def test_diff_prints_the_config_keys_and_final_metrics_that_differ(store, capsys):
    mlflow = client(store)
    experiment = mlflow.create_experiment("study")
    ids = []
    for lr, loss in (("0.1", 0.5), ("0.2", 0.25)):
        run_id = _run(mlflow, experiment, f"lr={lr}", loss)
        mlflow.log_metric(run_id, "test_accuracy", 0.9)
        mlflow.log_text(run_id, f"seed: 0\noptimizer:\n  name: sgd\n  lr: {lr}\n", "config.yaml")
        ids.append(run_id)
    rows = _csv(capsys, "--tracking-uri", store_uri(store), "--csv", "--diff", ids[0][:8], ids[1])
    assert [(r["kind"], r["key"], r[ids[0][:8]], r[ids[1][:8]]) for r in rows] == [
        ("config", "optimizer.lr", "0.1", "0.2"), ("metric", "test_loss", "0.5", "0.25")]
    assert main(["runs", "--tracking-uri", store_uri(store), "--diff", ids[0], ids[0]]) == 0
    assert "no config key or final metric differs" in capsys.readouterr().out


def test_json_rows_keep_numbers_as_numbers(logged, capsys):
    assert main(["runs", "--tracking-uri", store_uri(logged), "--format", "json",
                 "--sort", "test_loss", "--limit", "1"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["test_loss"] == 1.0 and row["optimizer.lr"] == "0.1"


@pytest.mark.parametrize("args, fragment", [
    (["--status", "done"], "--status: unknown status 'done'; valid choices: FAILED, FINISHED"),
    (["--group-by", "optimizer.momentum"], "--group-by: no param 'optimizer.momentum' in "
                                           "these runs; valid choices: dataset.name, "),
    (["--params", "lr"], "--params: no param 'lr' in these runs; valid choices: "),
    (["--sort", "speed"], "--sort: no column 'speed'; valid choices: "),
    (["--filter", "metrics.test_loss <<< 1"], "--filter: "),
    (["--sweep", "nope"], "--sweep: no sweep matches 'nope'; valid choices: latest, or a "),
    (["--diff", "nope", "nope"], "--diff: no run with an id starting 'nope'; valid choices"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
])
def test_bad_options_are_one_line_errors(logged, capsys, args, fragment):
    assert main(["runs", "--tracking-uri", store_uri(logged), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"mlplab: error: {fragment}"), err


def test_a_store_that_does_not_exist_is_an_error_that_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "mlflow.db"
    assert main(["runs", "--tracking-uri", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mlplab: error: --tracking-uri: no MLflow store at {missing}; "
                          "valid choices: an existing store")
    assert len(err.splitlines()) == 1 and list(tmp_path.iterdir()) == []
