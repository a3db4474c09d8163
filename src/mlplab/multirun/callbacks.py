"""The Hydra callbacks of a sweep, listed under `hydra.callbacks` in `conf/train.yaml`.

- `WarmWorkers` starts the joblib launcher's workers early (`mlplab.multirun.worker_pool`).
- `StopSweepOnSignal` makes SIGINT/SIGTERM between a grid sweep's jobs stop the sweep with
  an exception that names the sweep (`mlplab.signals`).
- `MlflowSweepCallback` makes the sweep's parent run before any job starts and writes its
  summary when the sweep ends (`mlplab.tracking.sweep` does the MLflow part).

Hydra pickles its callbacks with every job it sends to a worker, so they keep little state.
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlplab.multirun.sweeps import grid_sweep, logger_enabled
from mlplab.multirun.worker_pool import call_in_pool, start_warm_up
from mlplab.signals import install_sweep_handlers, restore_sweep_handlers
from mlplab.tracking.store import git_commit, resolve_tracking_uri
from mlplab.tracking.sweep import (
    claim_open_parent,
    close_unfinished_sweep,
    open_parent_run,
    summarize_or_fail,
    write_parent_file,
)

log = logging.getLogger(__name__)

# Where the monitored metric and its direction may live in a composed config.
MONITOR_KEYS = ("trainer.monitor", "trainer.early_stopping.monitor")
MODE_KEYS = ("trainer.mode", "trainer.early_stopping.mode")


class WarmWorkers(Callback):
    """`hydra.callbacks.warm_workers._target_: mlplab.multirun.callbacks.WarmWorkers`."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        start_warm_up(config)


class StopSweepOnSignal(Callback):
    """`hydra.callbacks.stop_on_signal._target_: mlplab.multirun.callbacks.StopSweepOnSignal`.

    Only while a grid sweep runs, and only where Python's default handlers are in place.
    Under a parallel launcher the exception stops the launcher's wait: joblib then ends its
    workers at once (runs they had open stay RUNNING), and the parent run is closed as
    stopped early.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if grid_sweep(config.hydra):
            install_sweep_handlers(str(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        restore_sweep_handlers()


def _first(config: DictConfig, keys, default):
    for key in keys:
        value = OmegaConf.select(config, key, default=None)
        if value is not None:
            return str(value)
    return default


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
                     "mlplab.sweep_dir": str(sweep_dir.resolve()), "mlplab.role": "sweep"}}
        parent = call_in_pool(config, open_parent_run, request)
        plots = OmegaConf.select(config, "logger.plots", default=True)
        summary = {"monitor": self.monitor or _first(config, MONITOR_KEYS, None),
                   "mode": (self.mode or _first(config, MODE_KEYS, "min")).lower(),
                   "plots": OmegaConf.to_container(plots) if OmegaConf.is_config(plots)
                   else plots}
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_parent_file(sweep_dir, {**parent, "summary": summary, "closed": False})
        # The last resort, for a stop nobody reported (too late to import MLflow if this
        # process never has, so the CLI closes the parent first when it can).
        atexit.register(close_unfinished_sweep, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        parent = claim_open_parent(Path(str(config.hydra.sweep.dir)))
        if parent is not None:
            call_in_pool(config, summarize_or_fail, parent, False)
