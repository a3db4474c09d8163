"""The MLflow UI's opening view: which columns, order, groups and charts it holds, and the
experiment tag the UI reads it from."""

from __future__ import annotations

import json

from mlplab.tracking import get_client
from mlplab.tracking.ui_view import (
    EXPERIMENT_VIEW_KEY,
    PRIMARY_METRIC_TAG,
    SWEEP_TAG,
    VIEW_TAG_PREFIX,
    RunRecord,
    default_monitor,
    publish_experiment_view,
    view_state,
    view_url,
)


def record(i, lr, seed, loss, sweep=None, role=None, **extra_params):
    tags = {SWEEP_TAG: sweep} if sweep else {}
    if role:
        tags["mlplab.role"] = role
    params = {"optimizer.lr": lr, "seed": seed, "dataset.name": "moons",
              "logger.tracking_uri": f"/store/{i}", "trainer.monitor": "test_loss",
              "trainer.mode": "min", **extra_params}
    metrics = {} if role else {"test_loss": loss, "train_loss": loss / 2, "test_accuracy": 0.9}
    return RunRecord(f"run{i}", f"name-{i}", params, metrics, tags)


RUNS = [record(0, "0.1", "0", 0.30), record(1, "0.01", "1", 0.20, sweep="s"),
        record(2, "0.01", "0", 0.10, sweep="s"), record(3, "0.1", "0", 0.0, sweep="s",
                                                         role="sweep")]


def test_columns_are_the_final_metrics_and_the_varying_params_monitor_first():
    state = view_state(RUNS, "test_loss", "min")
    assert state["selectedColumns"][:3] == [
        "metrics.`test_loss`", "params.`optimizer.lr`", "params.`seed`"]
    assert set(state["selectedColumns"]) >= {"metrics.`test_accuracy`", "metrics.`train_loss`"}
    # constant params and where-it-was-logged params are not columns
    assert not [c for c in state["selectedColumns"] if "dataset.name" in c or "logger" in c]
    assert state["columnOrder"][:3] == ["attributes.`Run Name`", "runDateAndNestInfo",
                                        "duration"]
    assert state["columnWidths"]["attributes.`Run Name`"] >= 200


def test_rows_are_sorted_by_the_monitored_metric_and_sweeps_grouped():
    state = view_state(RUNS, "test_accuracy", "max")
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`test_accuracy`", False)
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": SWEEP_TAG}]
    assert state["groupBy"]["aggregateFunction"] == "max"
    assert view_state(RUNS[:1], "test_loss")["groupBy"] is None  # no sweep: no groups


def test_charts_follow_the_monitored_metric_and_the_numeric_varying_params():
    runs = [*RUNS, record(4, "0.1", "0", 0.5, optimizer="adam")]
    charts = view_state(runs, "test_loss")["compareRunCharts"]
    assert charts[0]["type"] == "LINE" and charts[0]["metricKey"] == "test_loss"
    parallel = charts[1]
    assert parallel["type"] == "PARALLEL" and parallel["selectedMetrics"] == ["test_loss"]
    assert parallel["selectedParams"] == ["optimizer.lr", "seed"]  # not the text "optimizer"
    assert {c["metricKey"] for c in charts[2:]} == {"test_accuracy", "train_loss"}


def test_the_monitor_is_the_one_the_runs_were_trained_with():
    assert default_monitor(RUNS) == ("test_loss", "min")
    bare = [RunRecord("a", "a", {}, {"val_loss": 1.0, "test_loss": 2.0}, {})]
    assert default_monitor(bare) == ("val_loss", "min")


def test_the_view_is_an_experiment_tag_the_ui_url_names(uri):
    client = get_client(uri)
    experiment_id = client.create_experiment("views")
    for lr, loss in (("0.1", 0.5), ("0.3", 0.25)):
        run = client.create_run(experiment_id, run_name=f"lr={lr}")
        client.log_param(run.info.run_id, "optimizer.lr", lr)
        client.log_metric(run.info.run_id, "test_loss", loss)
    key = publish_experiment_view(client, experiment_id)
    tags = client.get_experiment(experiment_id).tags
    envelope = json.loads(tags[VIEW_TAG_PREFIX + key])
    assert key == EXPERIMENT_VIEW_KEY and envelope["name"] == "mlplab: compare runs"
    state = json.loads(envelope["state"])
    assert state["selectedColumns"][:2] == ["metrics.`test_loss`", "params.`optimizer.lr`"]
    assert tags[PRIMARY_METRIC_TAG] == "test_loss"
    created = envelope["createdAt"]
    publish_experiment_view(client, experiment_id)  # rewritten, same view
    again = json.loads(client.get_experiment(experiment_id).tags[VIEW_TAG_PREFIX + key])
    assert again["createdAt"] == created and again["updatedAt"] >= created
    assert view_url("http://127.0.0.1:5000", experiment_id, key) == (
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={key}")
