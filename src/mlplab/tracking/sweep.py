"""A sweep as one MLflow parent run with one child run per job.

Plain functions with plain values in and out, so that they may run in a worker of the
sweep; the Hydra callback that calls them is `mlplab.multirun.callbacks.MlflowSweepCallback`.
`open_parent_run` creates the store, the experiment and the parent run, once, before any
job starts (so parallel jobs never race to create tables or experiments); the launching
side writes `<sweep dir>/mlflow_parent_run.json` and each job reads it (`read_parent_run`)
and tags its own run `mlflow.parentRunId` and `mlplab.sweep` (`sweep_tags`: the parent's
name, which the parent carries too, so the UI can show a sweep as one group). MLflow's
`nested=True` cannot do this: it links runs through the fluent API's in-process state, and
sweep jobs run in other processes.

`summarize_sweep` writes `children.csv` and the sweep plots, names the best child on the
parent (`best_run_id`, `best_<metric>`; pruned children stopped early and do not compete),
closes the parent (FAILED when every child failed, else FINISHED), publishes the sweep's
view and the experiment's for the MLflow UI (`mlplab.tracking.ui_view`), and returns the
sweep's verdict as plain values for the console. A sweep that made no child run (an Optuna
study that was complete already) leaves no parent: it is deleted.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import tempfile
from pathlib import Path

from mlplab.tracking.store import ensure_experiment, get_client
from mlplab.tracking.ui_view import SWEEP_TAG, publish_experiment_view, publish_sweep_view

log = logging.getLogger(__name__)

PARENT_RUN_FILE = "mlflow_parent_run.json"
TOP_N = 5


def read_parent_run(sweep_dir) -> dict | None:
    """{"run_id", "experiment_id", "tracking_uri", "run_name"} written by the callback, or
    None."""
    path = Path(sweep_dir) / PARENT_RUN_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_parent_file(sweep_dir, parent: dict) -> None:
    """`parent` as the sweep's parent run file: {run_id, experiment_id, tracking_uri,
    summary: {monitor, mode, plots}, closed}."""
    (Path(sweep_dir) / PARENT_RUN_FILE).write_text(json.dumps(parent, indent=2))


def claim_open_parent(sweep_dir) -> dict | None:
    """The parent run of the sweep in `sweep_dir` if it is still open, marked closed in its
    file first, so that exactly one of the ways a sweep can end summarizes it; None when
    there is no parent run (logger=none) or it is closed already."""
    parent = read_parent_run(sweep_dir) if sweep_dir is not None else None
    if parent is None or parent.get("closed", True):
        return None
    write_parent_file(sweep_dir, {**parent, "closed": True})
    return parent


def close_unfinished_sweep(sweep_dir, why: str | None = None) -> bool:
    """Close, as stopped early, the parent run of a sweep that ended without its normal end
    (a job raised, or a signal stopped it: `why`, e.g. "interrupted by SIGINT"); returns
    whether there was one to close."""
    parent = claim_open_parent(sweep_dir)
    if parent is None:
        return False
    summarize_or_fail(parent, why or True)
    return True


def summarize_or_fail(parent: dict, stopped: bool | str) -> dict | None:
    """`summarize_sweep` with the settings recorded in the parent file; if the summary
    fails, the parent still ends (FAILED) rather than staying RUNNING. Returns the verdict
    (None when the summary failed)."""
    summary = parent.get("summary", {})
    try:
        return summarize_sweep(parent, summary.get("monitor"), summary.get("mode", "min"),
                               summary.get("plots", True), stopped, summary.get("swept"))
    except Exception:
        log.exception("could not summarize the sweep's parent run")
        with contextlib.suppress(Exception):
            get_client(parent["tracking_uri"]).set_terminated(parent["run_id"], "FAILED")
        return None


def sweep_tags(parent: dict | None) -> dict[str, str]:
    """The tags a child of `parent` (a parent run file's content) shares with it."""
    return {SWEEP_TAG: parent["run_name"]} if parent and parent.get("run_name") else {}


def open_parent_run(request: dict) -> dict:
    """Create the store, the experiment and the sweep's parent run from `request`
    (tracking_uri, experiment, run_name, tags); return {"run_id", "experiment_id",
    "tracking_uri", "run_name"}. Plain values in and out: it may run in a worker."""
    client = get_client(request["tracking_uri"])
    experiment_id = ensure_experiment(client, request["experiment"])
    tags = {**request["tags"], SWEEP_TAG: request["run_name"]}
    run = client.create_run(experiment_id, run_name=request["run_name"], tags=tags)
    return {"run_id": run.info.run_id, "experiment_id": experiment_id,
            "tracking_uri": client.tracking_uri, "run_name": request["run_name"]}


CHILD_STATES = ("completed", "pruned", "failed", "killed", "running")


def state_of(status: str, pruned: bool) -> str:
    """One of `CHILD_STATES` for a run's MLflow status and whether a pruner stopped it."""
    if status == "FINISHED":
        return "pruned" if pruned else "completed"
    return {"FAILED": "failed", "KILLED": "killed"}.get(status, "running")


def child_state(run) -> str:
    """What became of a sweep's child run (see `state_of`)."""
    return state_of(run.info.status, run.data.tags.get("pruned") == "true")


def summarize_sweep(parent: dict, monitor: str | None, mode: str, plots, stopped: bool | str,
                    swept=None) -> dict:
    """Write children.csv and the sweep plots to the parent run, name its best child,
    close it and publish the UI views; return the verdict (see `verdict_of`).
    `monitor` None: val_loss, or test_loss when no child logged val_loss. `swept`: the
    config keys the sweep varies (None: every param that differs between children)."""
    client = get_client(parent["tracking_uri"])
    parent_id = parent["run_id"]
    children = _children(client, parent)
    monitor = monitor or _default_monitor(children)
    if not children and not stopped:
        client.set_terminated(parent_id, "FAILED")
        client.delete_run(parent_id)  # nothing ran: an empty record would only mislead
        return verdict_of(parent, children, monitor, mode, status="DELETED")
    ended = [c for c in children if c.info.status == "FINISHED"]  # pruned ones included
    completed = [c for c in ended if child_state(c) == "completed"]
    with tempfile.TemporaryDirectory(prefix="mlplab-sweep-") as staging:
        _write_children_csv(children, Path(staging) / "children.csv")
        _draw_sweep_plots(ended, swept, monitor, mode, Path(staging) / "plots", plots)
        client.log_artifacts(parent_id, staging)
    ranked = _ranked(completed, monitor, mode)
    tags = {"n_children": str(len(children)), "n_finished": str(len(ended)),
            "monitor": monitor, "mode": mode}
    if ranked:
        value, best = ranked[0]
        tags.update({"best_run_id": best.info.run_id, f"best_{monitor}": repr(value),
                     "best_run_name": best.info.run_name or "",
                     "best_overrides": best.data.tags.get("overrides", "")})
        client.log_metric(parent_id, f"best_{monitor}", value)
    status = "FINISHED"
    if not children:
        status, tags["failure_reason"] = "FAILED", "the sweep produced no child runs"
    elif not ended and all(c.info.status == "FAILED" for c in children):
        status, tags["failure_reason"] = "FAILED", "every child run failed"
    elif stopped:
        why = stopped if isinstance(stopped, str) else "a job raised or was interrupted"
        tags["stop_reason"] = f"the sweep stopped early ({why})"
    for key, value in tags.items():
        client.set_tag(parent_id, key, value)
    client.set_terminated(parent_id, status)
    view = _publish_views(client, parent, children, monitor, mode, swept)
    return verdict_of(parent, children, monitor, mode, status=status, ranked=ranked,
                      view_key=view, reason=tags.get("failure_reason") or tags.get("stop_reason"))


def verdict_of(parent: dict, children, monitor: str, mode: str, *, status: str,
               ranked=(), view_key: str | None = None, reason: str | None = None) -> dict:
    """The sweep's outcome as plain values: the parent run, how many children ended how,
    the best `TOP_N` completed children ({run_id, run_name, value}, best first), and the
    key of the sweep's UI view."""
    counts = dict.fromkeys(CHILD_STATES, 0)
    for child in children:
        counts[child_state(child)] += 1
    top = [{"run_id": run.info.run_id, "run_name": run.info.run_name or "", "value": value}
           for value, run in list(ranked)[:TOP_N]]
    return {"parent_run_id": parent["run_id"], "parent_run_name": parent.get("run_name", ""),
            "experiment_id": parent["experiment_id"], "tracking_uri": parent["tracking_uri"],
            "status": status, "reason": reason, "monitor": monitor, "mode": mode,
            "counts": counts, "top": top, "view_key": view_key}


def _publish_views(client, parent: dict, children, monitor, mode, swept) -> str | None:
    """The sweep's view and the experiment's, refreshed; the sweep view's key (None if
    the UI views could not be written: they never fail a sweep)."""
    try:
        key = publish_sweep_view(client, parent, children, monitor, mode, swept or ())
        publish_experiment_view(client, parent["experiment_id"])
        return key
    except Exception:
        log.exception("could not publish the sweep's MLflow UI view")
        return None


def _draw_sweep_plots(children, swept, monitor: str, mode: str, out_dir: Path,
                      selection) -> None:
    try:
        from mlplab.tracking.plots_sweep import log_sweep_plots
    except ImportError:
        return
    try:
        log_sweep_plots(children, swept, monitor, mode, out_dir, selection)
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


def _ranked(runs, monitor: str, mode: str) -> list:
    """[(score, run)] of the runs with a finite score, best first."""
    scored = [(_score(r, monitor), r) for r in runs]
    scored = [(value, r) for value, r in scored if math.isfinite(value)]
    return sorted(scored, key=lambda pair: -pair[0] if mode == "max" else pair[0])


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
