"""`hydra/launcher=ray`: each job of a sweep is one Ray task, in a fresh worker process.

Ours rather than hydra-ray-launcher: that package declares `cloudpickle<3` (for its AWS
mode, which ships pickles to machines it creates) and `boto3`, so `pip install
mlplab[ray]` could not resolve next to MLflow 3. Its local mode is a few lines over
`ray.remote`, which this module is, with the same config keys (`hydra.launcher.ray.init`
for `ray.init`, `hydra.launcher.ray.remote` for `ray.remote`; conf/hydra/launcher/ray.yaml):

- `ray.init.address`: null starts a Ray instance inside the command (this machine only);
  `auto`, or `HOST:PORT` of a head started with `ray start --head`, joins a cluster. The
  command's `MLPLAB_*` and `MLFLOW_*` environment variables go to the jobs
  (`runtime_env.env_vars`): a worker started by another `ray start` does not have them.
- `ray.remote.max_calls: 1`: a worker process runs one job and exits, so no job inherits
  another's imports, BLAS threads or leaked memory, as with one SLURM job per task.
- `ray.remote.max_retries`: a job whose worker died (killed, out of memory, its node
  lost) runs again, from its start, in a new worker. Its first attempt's MLflow run is
  then closed KILLED (`close_lost_attempts`), so no run stays RUNNING. A job that raised is
  not retried: Hydra's `run_job` catches the error and returns it, and the same config
  would fail the same way again.

Every job is a child run of the sweep's parent run, as with the other launchers: the
jobs read `<sweep dir>/mlflow_parent_run.json`, so the sweep directory and the tracking
store must be reachable from every node (a shared file system, an MLflow server).
`<sweep dir>/.ray/<job>.attempts` counts each job's attempts; the launcher logs where each
job ran (node, pid) and how many attempts it took.

SIGINT or SIGTERM to the launching process (or its process group) stops a grid sweep as
under the local launchers (`mlplab.multirun.stopping`): the launching process writes the
sweep's stop file, each running job (watching that file, on whichever node it runs) ends
its fit at the epoch's end, checkpoints and closes its run KILLED, and once they have
ended the jobs still queued are cancelled (one that starts meanwhile sees the stop file
and runs nothing).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from omegaconf import OmegaConf, open_dict

from mlplab.config.compose import RAY_HINT
from mlplab.errors import ConfigError
from mlplab.signals import SIGNALS, as_sweep_interrupted
from mlplab.tracking.stale import close_with_reason, left_by_a_dead_process
from mlplab.tracking.store import get_client
from mlplab.tracking.sweep import read_parent_run

log = logging.getLogger(__name__)

FORWARDED_ENV_PREFIXES = ("MLPLAB_", "MLFLOW_")
ATTEMPTS_DIR = ".ray"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"hydra/launcher: 'ray' {RAY_HINT}") from None
    return ray


def init_arguments(init_cfg: Any) -> dict:
    """`hydra.launcher.ray.init` as `ray.init` keywords, with this command's `MLPLAB_*` and
    `MLFLOW_*` variables added to `runtime_env.env_vars` (the user's own entries win)."""
    arguments = OmegaConf.to_container(init_cfg, resolve=True) if init_cfg else {}
    arguments = {k: v for k, v in arguments.items() if v is not None or k != "address"}
    forwarded = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    if forwarded:
        runtime_env = dict(arguments.get("runtime_env") or {})
        runtime_env["env_vars"] = {**forwarded, **(runtime_env.get("env_vars") or {})}
        arguments["runtime_env"] = runtime_env
    return arguments


def use_cluster_token() -> None:
    """Present this user's Ray token when joining a running cluster.

    Ray 2.60's `ray start --head` turns token authentication on by default (it writes
    `~/.ray/auth_token`), but a driver joining it by address keeps authentication off
    unless `RAY_AUTH_MODE=token` is set, and is refused. When a token is at hand and the
    user chose no mode, say `token`; a cluster without authentication accepts it too.
    """
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or path.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


@contextlib.contextmanager
def _signal_handlers_kept():
    """Keep this process's SIGINT and SIGTERM handlers across the block: `ray.init` puts
    its own in place (a SIGTERM handler that exits with status 1, and a C-level one that
    logs a stack), which would end the sweep without stopping its jobs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {signum: signal.getsignal(signum) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _count_attempt(sweep_dir: str, job_num: int) -> int:
    """Record one more attempt of job `job_num`; return how many there have been."""
    directory = Path(sweep_dir) / ATTEMPTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{job_num}.attempts").open("a") as handle:
        handle.write(f"{socket.gethostname()} {os.getpid()}\n")
    return len((directory / f"{job_num}.attempts").read_text().splitlines())


def run_in_worker(hydra_context, sweep_config, task_function, singleton_state):
    """The Ray task of one job: Hydra's `run_job` in this worker, as the joblib launcher's
    workers run it; returns the JobReturn and where it ran."""
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    attempt = _count_attempt(str(sweep_config.hydra.sweep.dir), sweep_config.hydra.job.num)
    result = run_job(hydra_context=hydra_context, task_function=task_function,
                     config=sweep_config, job_dir_key="hydra.sweep.dir",
                     job_subdir_key="hydra.sweep.subdir")
    return result, {"node": socket.gethostname(), "pid": os.getpid(), "attempt": attempt}


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
    """Run each job as a Ray task; return their JobReturns in order."""
    arguments = init_arguments(launcher.ray_cfg.get("init"))
    if arguments.get("address"):
        use_cluster_token()  # before Ray is imported: it reads the mode only then
    ray = _import_ray()
    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    ours = not ray.is_initialized()
    if ours:
        log.info("Connecting to Ray (%s)", arguments.get("address") or "a new local instance")
        with _signal_handlers_kept():
            ray.init(**arguments)
    remote_cfg = launcher.ray_cfg.get("remote")
    options = OmegaConf.to_container(remote_cfg, resolve=True) if remote_cfg else {}
    task = ray.remote(**options)(run_in_worker) if options else ray.remote(run_in_worker)
    log.info("Ray launcher: %d jobs, sweep output dir: %s", len(job_overrides), sweep_dir)
    pending = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        sweep_config = context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"ray_job_{idx}"
            sweep_config.hydra.job.num = idx
        pending.append((idx, list(overrides), task.remote(
            context, sweep_config, launcher.task_function, Singleton.get_state())))
    try:
        results, retried = _collect(ray, pending)
    except KeyboardInterrupt as error:
        # A signal stopped the sweep (`mlplab.multirun.callbacks.StopSweepOnSignal`): the
        # running jobs have closed their runs KILLED by now; no job still queued may start.
        for _, _, ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        if ours:  # the workers' log lines stop here, not after the sweep's last line
            with contextlib.suppress(Exception):
                ray.shutdown()
        stop = as_sweep_interrupted(error)
        if stop is error:
            raise
        raise stop from None
    if retried:
        close_lost_attempts(str(sweep_dir), retried)
    return results


def _collect(ray, pending) -> tuple[list[JobReturn], list[list[str]]]:
    """Each job's JobReturn, in order, and the overrides of the jobs Ray ran more than once
    (or lost for good)."""
    results, retried = [], []
    for idx, overrides, ref in pending:
        try:
            result, where = ray.get(ref)
        except Exception as error:  # noqa: BLE001 -- lost for good: report it as the job's
            log.error("#%d: its Ray task failed after its retries: %s", idx, error)
            results.append(JobReturn(overrides=overrides, status=JobStatus.FAILED,
                                     _return_value=error, task_name=str(idx)))
            retried.append(overrides)
            continue
        log.info("#%d ran on %s (pid %d), attempt %d", idx, where["node"], where["pid"],
                 where["attempt"])
        if where["attempt"] > 1:
            retried.append(overrides)
        results.append(result)
    return results, retried


def close_lost_attempts(sweep_dir: str, retried: list[list[str]]) -> list[str]:
    """Close KILLED the child runs that the dead workers of retried jobs left RUNNING.

    Called once every job of the batch has returned, so a RUNNING child of this sweep
    whose overrides are a retried job's can only be an attempt whose worker died. The
    retry's own process may have closed such a run FAILED already, as a stale run of a
    process that is gone (`mlplab.tracking.stale`); the launcher knows why it ended, so
    that run is re-labelled KILLED here too.
    """
    parent = read_parent_run(sweep_dir)
    if parent is None:
        return []
    client = get_client(parent["tracking_uri"])
    wanted = {" ".join(overrides) for overrides in retried}
    runs = client.search_runs(
        [parent["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'", max_results=1000)
    closed = []
    for run in runs:
        if left_by_a_dead_process(run) and run.data.tags.get("overrides") in wanted:
            close_with_reason(client, run, "KILLED", {
                "stop_reason": "its Ray worker died; Ray ran the job again in a new worker"})
            closed.append(run.info.run_id)
    if closed:
        log.warning("Closed runs %s, left RUNNING by Ray workers that died", closed)
    return closed
