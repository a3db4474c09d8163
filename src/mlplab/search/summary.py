"""What a finished sweep leaves behind: `optuna_summary.json` and the parent run's record.

The summary names the best trial, its params and the overrides that reproduce it, and
counts complete, pruned and failed trials. When the tracking layer created a parent run
for the sweep (`<sweep dir>/mlflow_parent_run.json`), the same facts are logged on it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)

SUMMARY_FILE = "optuna_summary.json"


def study_summary(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    """Plain-JSON description of the study's outcome."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if done:
        best_trial = study.best_trial
        best = {
            "number": best_trial.number,
            "value": best_trial.value,
            "params": best_trial.params,
            "overrides": best_trial.user_attrs.get("overrides", []),
            "user_attrs": {k: v for k, v in best_trial.user_attrs.items() if k != "overrides"},
        }
    return {
        "study_name": study.study_name,
        "storage": storage_url,
        "direction": study.direction.name.lower(),
        "n_trials": counts,
        "best_trial": best,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "last_epoch": t.last_step,
                "pruned_at": t.user_attrs.get("pruned_at"),
                "objective_std": t.user_attrs.get("objective_std"),
            }
            for t in trials
        ],
    }


def write_summary(study: optuna.Study, sweep_dir: Path, storage_url: str, space: Any,
                  log_parent: bool = True) -> dict:
    """Write `<sweep dir>/optuna_summary.json` and (with `log_parent`) log it on the
    sweep's parent run."""
    summary = study_summary(study, storage_url)
    path = Path(sweep_dir) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    best = summary["best_trial"]
    if best is None:
        log.warning("Study %s has no complete trial yet", study.study_name)
    else:
        log.info("Best trial %d: value=%.6g params=%s", best["number"], best["value"],
                 best["params"])
    from mlplab.tracking.sweep import read_parent_run

    parent = read_parent_run(sweep_dir) if log_parent else None
    if parent is not None:
        log_on_parent_run(parent, summary, path)
    return summary


def log_on_parent_run(parent: dict[str, Any], summary: dict[str, Any], path: Path) -> None:
    """Best trial, best params and trial counts on the sweep's MLflow parent run."""
    from mlflow.entities import Metric, Param, RunTag

    from mlplab.tracking.store import get_client

    client = get_client(parent.get("tracking_uri"))
    run_id = parent["run_id"]
    counts = summary["n_trials"]
    metrics = {f"optuna.n_{state}": counts[state] for state in ("complete", "pruned", "fail")}
    tags = {"optuna.study_name": summary["study_name"], "optuna.storage": summary["storage"]}
    params: dict[str, Any] = {}
    best = summary["best_trial"]
    if best is not None:
        metrics["optuna.best_value"] = best["value"]
        tags["optuna.best_trial"] = str(best["number"])
        tags["optuna.best_overrides"] = " ".join(best["overrides"])[:5000]
        params = {f"optuna.best.{key}": value for key, value in best["params"].items()}
    existing = client.get_run(run_id).data.params
    params = {k: v for k, v in params.items() if k not in existing}  # params are write-once
    now_ms = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    client.log_artifact(run_id, str(path))
