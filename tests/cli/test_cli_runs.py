"""`mlplab runs`: the table of logged runs, filtered, sorted and grouped over seeds."""

from __future__ import annotations

import csv
import io
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
