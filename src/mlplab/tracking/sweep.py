"""A sweep as one MLflow parent run with one child run per job.

Plain functions with plain values in and out, so that they may run in a worker of the
sweep; the Hydra callback that calls them is `mlplab.multirun.callbacks.MlflowSweepCallback`.
`open_parent_run` creates the store, the experiment and the parent run, once, before any
job starts (so parallel jobs never race to create tables or experiments); the launching
side writes `<sweep dir>/mlflow_parent_run.json` and each job reads it (`read_parent_run`)
and tags its own run `mlflow.parentRunId`. MLflow's `nested=True` cannot do this: it links
runs through the fluent API's in-process state, and sweep jobs run in other processes.

`summarize_sweep` writes `children.csv` and the sweep plots, names the best child on the
parent (`best_run_id`, `best_<metric>`) and closes the parent: FAILED when every child
failed, else FINISHED.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import tempfile
from pathlib import Path

from mlplab.tracking.store import ensure_experiment, get_client

log = logging.getLogger(__name__)

PARENT_RUN_FILE = "mlflow_parent_run.json"


def read_parent_run(sweep_dir) -> dict | None:
    """{"run_id", "experiment_id", "tracking_uri"} written by the callback, or None."""
    path = Path(sweep_dir) / PARENT_RUN_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def open_parent_run(request: dict) -> dict:
    """Create the store, the experiment and the sweep's parent run from `request`
    (tracking_uri, experiment, run_name, tags); return {"run_id", "experiment_id",
    "tracking_uri"}. Plain values in and out: it may run in a worker of the sweep."""
    client = get_client(request["tracking_uri"])
    experiment_id = ensure_experiment(client, request["experiment"])
    run = client.create_run(experiment_id, run_name=request["run_name"], tags=request["tags"])
    return {"run_id": run.info.run_id, "experiment_id": experiment_id,
            "tracking_uri": client.tracking_uri}


def summarize_sweep(parent: dict, monitor: str | None, mode: str, plots, stopped: bool) -> None:
    """Write children.csv and the sweep plots to the parent run, name its best child and
    close it. `monitor` None: val_loss, or test_loss when no child logged val_loss."""
    client = get_client(parent["tracking_uri"])
    parent_id = parent["run_id"]
    children = _children(client, parent)
    monitor = monitor or _default_monitor(children)
    finished = [c for c in children if c.info.status == "FINISHED"]
    with tempfile.TemporaryDirectory(prefix="mlplab-sweep-") as staging:
        _write_children_csv(children, Path(staging) / "children.csv")
        _draw_sweep_plots(finished, monitor, mode, Path(staging) / "plots", plots)
        client.log_artifacts(parent_id, staging)
    best = _best(finished, monitor, mode)
    tags = {"n_children": str(len(children)), "n_finished": str(len(finished)),
            "monitor": monitor, "mode": mode}
    if best is not None:
        value, best = best
        tags.update({"best_run_id": best.info.run_id, f"best_{monitor}": repr(value),
                     "best_run_name": best.info.run_name or "",
                     "best_overrides": best.data.tags.get("overrides", "")})
        client.log_metric(parent_id, f"best_{monitor}", value)
    status = "FINISHED"
    if not children:
        status, tags["failure_reason"] = "FAILED", "the sweep produced no child runs"
    elif not finished and all(c.info.status == "FAILED" for c in children):
        status, tags["failure_reason"] = "FAILED", "every child run failed"
    elif stopped:
        tags["stop_reason"] = "the sweep stopped early (a job raised or was interrupted)"
    for key, value in tags.items():
        client.set_tag(parent_id, key, value)
    client.set_terminated(parent_id, status)


def _draw_sweep_plots(children, monitor: str, mode: str, out_dir: Path, selection) -> None:
    try:
        from mlplab.tracking.plots_sweep import log_sweep_plots
    except ImportError:
        return
    try:
        log_sweep_plots(children, None, monitor, mode, out_dir, selection)
    except Exception:
        log.exception("drawing the sweep's plots failed")


def _children(client, parent: dict) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [parent["experiment_id"]],
            filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'",
            max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _default_monitor(children) -> str:
    has_val = any("val_loss" in c.data.metrics for c in children)
    return "val_loss" if has_val else "test_loss"


def _score(run, monitor: str) -> float:
    """The child's objective for `monitor` (tag `objective`, set from the trainer's result),
    else the metric's last logged value."""
    tags = run.data.tags
    if tags.get("objective_metric") == monitor and "objective" in tags:
        return float(tags["objective"])
    return run.data.metrics.get(monitor, math.nan)


def _best(runs, monitor: str, mode: str):
    scored = [(_score(r, monitor), r) for r in runs]
    scored = [(value, r) for value, r in scored if math.isfinite(value)]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda pair: pair[0])


def _write_children_csv(children, path: Path) -> None:
    metric_keys = sorted({k for c in children for k in c.data.metrics})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run_id", "run_name", "status", "duration_s", "overrides", *metric_keys])
        for child in sorted(children, key=lambda c: c.info.start_time or 0):
            info = child.info
            duration = ((info.end_time - info.start_time) / 1000
                        if info.end_time and info.start_time else "")
            writer.writerow([info.run_id, info.run_name, info.status, duration,
                             child.data.tags.get("overrides", ""),
                             *(child.data.metrics.get(k, "") for k in metric_keys)])
