"""The MLflow runs a dead sweeper left RUNNING, closed by the worker that re-queues its trial.

A worker killed mid-trial (SIGKILL, a lost node) cannot close its runs: the job's child run
of the trial and the worker's own sweep parent run would stay RUNNING forever. The worker
that reaps the trial (`mlplab.search.workers`) finds the child by the params every job
logs, `trial.study_name` and `trial.number`, and closes it and its parent KILLED with a
`stop_reason` that says why.
"""

from __future__ import annotations

import logging

from mlplab.tracking.stale import close_with_reason, left_by_a_dead_process
from mlplab.tracking.store import get_client

log = logging.getLogger(__name__)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def close_orphaned_runs(tracking_uri: str, experiment: str, study_name: str, number: int,
                        worker: str | None) -> list[str]:
    """Close KILLED the RUNNING runs of trial `number` (or those a stale-run check closed
    FAILED first) and their RUNNING parents; returns the ids of the runs closed."""
    client = get_client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    children = client.search_runs(
        [found.experiment_id],
        filter_string=(f"params.`trial.study_name` = {_quoted(study_name)} and "
                       f"params.`trial.number` = '{number}'"), max_results=100)
    who = f"its sweeper ({worker})" if worker else "its sweeper"
    closed = []
    for child in children:
        if not left_by_a_dead_process(child):  # a retry's run, or one that closed itself
            continue
        reason = f"{who} died; trial {number} of study {study_name} was queued again"
        close_with_reason(client, child, "KILLED", {"stop_reason": reason})
        closed.append(child.info.run_id)
        parent_id = child.data.tags.get("mlflow.parentRunId")
        if parent_id and client.get_run(parent_id).info.status == "RUNNING":
            client.set_tag(parent_id, "stop_reason", f"{who} died during trial {number}")
            client.set_terminated(parent_id, "KILLED")
            closed.append(parent_id)
    if closed:
        log.warning("Closed runs %s left RUNNING by dead worker %s", closed, worker)
    return closed
