"""The Hydra callbacks of a sweep, listed under `hydra.callbacks` in `conf/train.yaml`.

- `WarmWorkers` starts the joblib launcher's workers early (`mlplab.multirun.worker_pool`),
  and has every launcher compose the sweep's jobs once per distinct set of group choices
  (`mlplab.config.sweep_jobs`).
- `StopSweepOnSignal` makes SIGINT/SIGTERM between a grid sweep's jobs stop the sweep with
  an exception that names the sweep (`mlplab.signals`).
- `MlflowSweepCallback` makes the sweep's parent run before any job starts and writes its
  summary when the sweep ends (`mlplab.tracking.sweep` does the MLflow part), then prints
  the sweep's verdict (`mlplab.multirun.verdict`).
- `SweepProgress` shows where a running sweep stands on an interactive terminal
  (`mlplab.multirun.progress`); listed last, so its line is gone before the verdict.

Hydra pickles its callbacks with every job it sends to a worker, so they keep little state.
"""

from __future__ import annotations

import atexit
import functools
import math
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlplab.config.sweep_jobs import compose_sweep_jobs_once
from mlplab.multirun import progress, stopping
from mlplab.multirun.sweeps import (
    SUBMITIT_LOCAL_LAUNCHER,
    grid_sweep,
    jobs_elsewhere,
    logger_enabled,
)
from mlplab.multirun.verdict import print_verdict
from mlplab.multirun.worker_pool import call_in_pool, compose_ahead, grid_size, start_warm_up
from mlplab.private_api import local_controllers_ignore_sigint
from mlplab.signals import (
    install_sweep_handlers,
    pending_sweep_stop,
    restore_sweep_handlers,
)
from mlplab.tracking.stale import process_tags
from mlplab.tracking.store import git_commit, resolve_tracking_uri
from mlplab.tracking.sweep import (
    claim_open_parent,
    close_unfinished_sweep,
    open_parent_run,
    summarize_or_fail,
    write_parent_file,
)

# Where the monitored metric and its direction may live in a composed config.
MONITOR_KEYS = ("trainer.monitor", "trainer.early_stopping.monitor")
MODE_KEYS = ("trainer.mode", "trainer.early_stopping.mode")


class WarmWorkers(Callback):
    """`hydra.callbacks.warm_workers._target_: mlplab.multirun.callbacks.WarmWorkers`."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        loader = None
        if GlobalHydra.instance().is_initialized():  # before the sweeper gets the loader
            loader = GlobalHydra.instance().config_loader()
            compose_sweep_jobs_once(loader)
        if start_warm_up(config) is not None and loader is not None:
            # While the pool's workers start: the configs their jobs are made from, sent
            # with the jobs (each worker would compose them itself before its first job).
            compose_ahead(loader, config)


class StopSweepOnSignal(Callback):
    """`hydra.callbacks.stop_on_signal._target_: mlplab.multirun.callbacks.StopSweepOnSignal`.

    Only while a grid sweep runs, and only where Python's default handlers are in place.
    Under a launcher whose jobs run in other processes (of this machine, or Ray's), the running jobs
    are stopped first and their runs closed KILLED (`mlplab.multirun.stopping`); the
    exception then stops the launcher's wait, and the parent run is closed as stopped
    early. A signal whose exception Python dropped (raised inside a `__del__` or a weakref
    callback) stops the sweep before its next job in this process, or, where the jobs ran
    elsewhere, when the launcher returns.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if grid_sweep(config.hydra):
            sweep_dir = str(config.hydra.sweep.dir)
            stopping.start(sweep_dir)
            elsewhere = jobs_elsewhere(config.hydra)
            if OmegaConf.select(config.hydra, "launcher._target_") == SUBMITIT_LOCAL_LAUNCHER:
                local_controllers_ignore_sigint()
            install_sweep_handlers(sweep_dir, functools.partial(stopping.stop_jobs, sweep_dir)
                                   if elsewhere else None)

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        stop = pending_sweep_stop()  # a signal whose exception Python dropped
        if stop is not None:
            raise stop

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        # A signal whose exception Python dropped while the launcher waited for jobs in other
        # processes: the jobs were stopped (the handler's on_stop ran), and the sweep ends
        # as stopped, not with a verdict (MlflowSweepCallback, called before this one,
        # leaves the parent open for the CLI to close).
        stop = pending_sweep_stop()
        restore_sweep_handlers()
        if stop is not None:
            raise stop


def _first(config: DictConfig, keys, default):
    for key in keys:
        value = OmegaConf.select(config, key, default=None)
        if value is not None:
            return str(value)
    return default


def swept_keys(config: DictConfig) -> list[str]:
    """The config keys this sweep varies: sweep overrides of the command line and of
    `hydra.sweeper.params` (grid values, Optuna's choice/range/interval), and the seed key
    of an Optuna sweep over seeds. A group (`optimizer=sgd,adam`) is its name."""
    lines = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    lines += [f"{key}={value}" for key, value in params.items()]
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except Exception:  # noqa: BLE001 -- preflight has reported bad overrides already
        return []
    keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
    if OmegaConf.select(config, "hydra.sweeper.seeds", default=None):
        keys.append(str(OmegaConf.select(config, "hydra.sweeper.seed_key", default="seed")))
    return list(dict.fromkeys(keys))


class MlflowSweepCallback(Callback):
    """`hydra.callbacks.mlflow_sweep._target_: mlplab.multirun.callbacks.MlflowSweepCallback`.

    `monitor`/`mode` choose the best child; by default they are read from the config
    (`trainer.monitor`, `trainer.mode`, or the early-stopping ones), falling back to
    `val_loss` (or `test_loss` when no child has it) and "min".

    Hydra skips `on_multirun_end` when a job raises or a signal stops the sweep. The parent
    run file in the sweep directory then still says `"closed": false`, and whoever
    learns of the stop closes it with `close_unfinished_sweep(sweep_dir)`: the CLI, from the
    `SweepInterrupted` that names the sweep, or this callback at interpreter exit.
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None):
        self.monitor = monitor
        self.mode = mode

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if not logger_enabled(config):
            return
        name = str(OmegaConf.select(config, "experiment_name", default="default"))
        overrides = " ".join(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        sweep_dir = Path(str(config.hydra.sweep.dir))
        request = {
            "tracking_uri": resolve_tracking_uri(
                OmegaConf.select(config, "logger.tracking_uri", default=None)),
            "experiment": name, "run_name": f"{name}/sweep {sweep_dir.name}",
            "tags": {"git_commit": git_commit(), "overrides": overrides,
                     "mlflow.source.name": "mlplab",
                     "mlplab.sweep_dir": str(sweep_dir.resolve()), "mlplab.role": "sweep",
                     # this process holds the parent (even when a pool's worker creates
                     # it): if it dies, the stale-run check closes the parent too
                     **process_tags()}}
        parent = call_in_pool(config, open_parent_run, request)
        plots = OmegaConf.select(config, "logger.plots", default=True)
        summary = {"monitor": self.monitor or _first(config, MONITOR_KEYS, None),
                   "mode": (self.mode or _first(config, MODE_KEYS, "min")).lower(),
                   "plots": OmegaConf.to_container(plots) if OmegaConf.is_config(plots)
                   else plots, "swept": swept_keys(config)}
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_parent_file(sweep_dir, {**parent, "summary": summary, "closed": False})
        # The last resort, for a stop nobody reported (too late to import MLflow if this
        # process never has, so the CLI closes the parent first when it can).
        atexit.register(close_unfinished_sweep, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if pending_sweep_stop() is not None:  # StopSweepOnSignal ends the sweep as stopped
            return
        parent = claim_open_parent(Path(str(config.hydra.sweep.dir)))
        if parent is not None:
            print_verdict(call_in_pool(config, summarize_or_fail, parent, False))


class SweepProgress(Callback):
    """`hydra.callbacks.sweep_progress._target_: mlplab.multirun.callbacks.SweepProgress`.

    Each job records its state in the sweep directory (here when it starts and ends; the
    CLI's task records how its run ended); the launching process draws the live line only
    when its stderr is a terminal.
    """

    def __init__(self) -> None:
        self.line: progress.LiveLine | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if not progress.interactive():
            return
        # A grid's size is known; an Optuna study may have trials from earlier runs.
        total = grid_size(config)
        self.line = progress.LiveLine(str(config.hydra.sweep.dir),
                                      _first(config, MONITOR_KEYS, None),
                                      _first(config, MODE_KEYS, "min").lower(), total).start()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.line is not None:
            self.line.stop()
            self.line = None

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if not _in_a_sweep(config):
            return
        job = config.hydra.job
        progress.write_state(config.hydra.sweep.dir, job.num, "running", name=job.override_dirname)

    def __getstate__(self) -> dict:
        # Launchers send the callbacks to their workers; the line is drawn here only.
        return {**self.__dict__, "line": None}

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if not _in_a_sweep(config):
            return
        self._record_end(config, job_return)
        if self.line is not None:  # a job of this process (the basic launcher)
            self.line.refresh()

    def _record_end(self, config: DictConfig, job_return) -> None:
        sweep_dir, num = config.hydra.sweep.dir, config.hydra.job.num
        if (progress.read_state(sweep_dir, num) or {}).get("state") != "running":
            return  # the task recorded how its run ended
        failed = job_return.status != JobStatus.COMPLETED
        value = None if failed else job_return.return_value
        finite = isinstance(value, int | float) and math.isfinite(value)
        progress.write_state(sweep_dir, num, "completed" if finite else "failed",
                             value if finite else None, config.hydra.job.override_dirname)


def _in_a_sweep(config: DictConfig) -> bool:
    """Whether this job is one of a sweep's (a single run has no job number)."""
    return OmegaConf.select(config, "hydra.job.num", default=None) is not None
