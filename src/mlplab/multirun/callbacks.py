"""The Hydra callbacks of a sweep, listed under `hydra.callbacks` in `conf/train.yaml`.

- `WarmWorkers` starts the joblib launcher's workers early (`mlplab.multirun.worker_pool`).
- `StopSweepOnSignal` makes SIGTERM between a grid sweep's jobs stop the sweep
  (`mlplab.signals`).
- `MlflowSweepCallback` makes the sweep's parent run before any job starts and writes its
  summary when the sweep ends (`mlplab.tracking.sweep` does the MLflow part), then prints
  the sweep's verdict (`mlplab.multirun.verdict`).
- `SweepProgress` shows where a running sweep stands on an interactive terminal
  (`mlplab.multirun.progress`); listed last, so its line is gone before the verdict.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mlplab.multirun import progress
from mlplab.multirun.sweeps import grid_sweep, logger_enabled
from mlplab.multirun.verdict import print_verdict
from mlplab.multirun.worker_pool import call_in_pool, grid_size, start_warm_up
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
        if OmegaConf.is_config(plots):
            plots = OmegaConf.to_container(plots)
        swept = swept_keys(config)
        try:
            if stopped:
                summarize_sweep(parent, monitor, mode, plots, stopped, swept)
            else:
                print_verdict(call_in_pool(config, summarize_sweep, parent, monitor, mode,
                                           plots, stopped, swept))
        except Exception:
            log.exception("could not summarize the sweep's parent run")
            with contextlib.suppress(Exception):
                get_client(parent["tracking_uri"]).set_terminated(parent["run_id"], "FAILED")


_OPEN: list[MlflowSweepCallback] = []


def _job_num(config: DictConfig) -> int | None:
    """The job's number in its sweep; None outside a sweep (it is left unset)."""
    if OmegaConf.select(config, "hydra.mode", default=None) != RunMode.MULTIRUN:
        return None
    return OmegaConf.select(config, "hydra.job.num", default=None)


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
        if _job_num(config) is None:  # a single run: Hydra calls job callbacks for it too
            return
        progress.write_state(config.hydra.sweep.dir, _job_num(config), "running",
                             name=config.hydra.job.override_dirname)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        sweep_dir, num = config.hydra.sweep.dir, _job_num(config)
        if num is None or (progress.read_state(sweep_dir, num) or {}).get("state") != "running":
            return  # the task recorded how its run ended
        failed = job_return.status != JobStatus.COMPLETED
        value = None if failed else job_return.return_value
        finite = isinstance(value, int | float) and math.isfinite(value)
        progress.write_state(sweep_dir, num, "completed" if finite else "failed",
                             value if finite else None, config.hydra.job.override_dirname)


def close_unfinished_sweeps() -> None:
    for callback in list(_OPEN):
        callback._close_unfinished()
