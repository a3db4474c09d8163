"""The Hydra callbacks of a sweep, listed under `hydra.callbacks` in `conf/train.yaml`.

- `WarmWorkers` starts the joblib launcher's workers early (`mlplab.multirun.worker_pool`).
- `StopSweepOnSignal` makes SIGTERM between a grid sweep's jobs stop the sweep
  (`mlplab.signals`).
- `MlflowSweepCallback` makes the sweep's parent run before any job starts and writes its
  summary when the sweep ends (`mlplab.tracking.sweep` does the MLflow part).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlplab.multirun.sweeps import grid_sweep, logger_enabled
from mlplab.multirun.worker_pool import call_in_pool, start_warm_up
from mlplab.signals import install_sweep_sigterm, restore_sweep_sigterm
from mlplab.tracking.store import get_client, git_commit, resolve_tracking_uri
from mlplab.tracking.sweep import PARENT_RUN_FILE, open_parent_run, summarize_sweep

log = logging.getLogger(__name__)
MONITOR_KEYS = ("trainer.monitor", "trainer.early_stopping.monitor")
MODE_KEYS = ("trainer.mode", "trainer.early_stopping.mode")


class WarmWorkers(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        start_warm_up(config)


class StopSweepOnSignal(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if grid_sweep(config.hydra):
            install_sweep_sigterm()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        restore_sweep_sigterm()


def _first(config: DictConfig, keys, default):
    for key in keys:
        value = OmegaConf.select(config, key, default=None)
        if value is not None:
            return str(value)
    return default


class MlflowSweepCallback(Callback):
    def __init__(self, monitor: str | None = None, mode: str | None = None):
        self.monitor = monitor
        self.mode = mode
        self.parent: dict | None = None
        self._config: DictConfig | None = None

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
        self.parent = call_in_pool(config, open_parent_run, request)
        self._config = config
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_RUN_FILE).write_text(json.dumps(self.parent, indent=2))
        _OPEN.append(self)
        atexit.register(self._close_unfinished)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self._finalize(config)

    def _close_unfinished(self) -> None:
        if self.parent is not None:
            self._finalize(self._config, stopped=True)

    def _finalize(self, config: DictConfig, stopped: bool = False) -> None:
        if self.parent is None:
            return
        parent, self.parent = self.parent, None
        if self in _OPEN:
            _OPEN.remove(self)
        monitor = self.monitor or _first(config, MONITOR_KEYS, None)
        mode = (self.mode or _first(config, MODE_KEYS, "min")).lower()
        plots = OmegaConf.select(config, "logger.plots", default=True)
        try:
            if stopped:
                summarize_sweep(parent, monitor, mode, plots, stopped)
            else:
                call_in_pool(config, summarize_sweep, parent, monitor, mode, plots, stopped)
        except Exception:
            log.exception("could not summarize the sweep's parent run")
            with contextlib.suppress(Exception):
                get_client(parent["tracking_uri"]).set_terminated(parent["run_id"], "FAILED")


_OPEN: list[MlflowSweepCallback] = []


def close_unfinished_sweeps() -> None:
    for callback in list(_OPEN):
        callback._close_unfinished()
