"""One training run in MLflow: `MlflowRun`, a context manager that is also a trainer callback.

It talks to the store through `MlflowClient` (never the fluent API): jobs run in worker
processes, where a process-global "active run" would be shared by unrelated jobs.

Metrics are buffered and written with one `log_batch` every `flush_seconds` (and whenever
1000 are waiting, at checkpoints and at the end): a `log_batch` costs a few milliseconds,
which is more than a whole epoch of a tiny network, so writing at every evaluation would
dominate short runs. The buffer is flushed before the run is closed whatever happened, so
no evaluated metric is lost, and the run always ends in FINISHED, FAILED or KILLED.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mlplab.errors import ConfigError, DataError
from mlplab.signals import clear_stop, note_stop, stopping
from mlplab.tracking.params import MAX_PARAM_LENGTH, flatten_params, param_text
from mlplab.tracking.stale import leave_close, process_tags
from mlplab.tracking.store import copy_artifacts, ensure_experiment, get_client, git_commit
from mlplab.tracking.store_errors import store_error_line
from mlplab.yaml_text import config_yaml

log = logging.getLogger(__name__)

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAG_LENGTH = 8000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _as_container(config):
    """A plain dict from a dict or an OmegaConf DictConfig (interpolations resolved)."""
    if config is None or isinstance(config, dict):
        return config
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True)


def run_to_resume(client, run_id: str, tracking_uri: str):
    """The run `trainer.resume` names, or a one-line ConfigError when the store has none."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise ConfigError(f"trainer.resume: no run {run_id!r} in {tracking_uri}; "
                          "valid choices: a run id of this store (see `mlplab runs`)"
                          ) from None


class MlflowRun:
    """Create (or re-open) an MLflow run for the duration of a `with` block.

    Pass it in the trainer's `callbacks`: it logs each evaluation's metrics with
    `step=epoch`, every checkpoint as `checkpoints/epoch_XXXXXX.npz`, and at the end the
    final weights (`weights/final.npz`) and learning curves. `config` (dict or DictConfig)
    is logged as flattened params and as `config.yaml`.

    With `dataset` (settable until training starts) the run logs it as its MLflow dataset
    input when training starts, and the end of training also draws the run's plots
    (`plots`, i.e. `logger.plots`: true/false/list of names) and, when it finished, logs
    the pyfunc model (`log_model`) as a logged model whose metrics are the run's last
    evaluation. A failing dataset input, figure or model never fails the run.

    `parent_run_id` makes this a sweep child; `resume_run_id` re-opens an earlier run
    (params it already has are not logged again: MLflow refuses to change a param).
    """

    def __init__(self, experiment_name: str, *, tracking_uri: str | None = None,
                 run_name: str | None = None, config=None, params: Mapping | None = None,
                 tags: Mapping[str, str] | None = None, overrides: str | Sequence[str] = "",
                 parent_run_id: str | None = None, resume_run_id: str | None = None,
                 flush_seconds: float = 5.0, log_checkpoints: bool = True, dataset=None,
                 plots=True, log_model: bool = True):
        self.experiment_name = experiment_name
        self.tracking_uri_requested = tracking_uri
        self.run_name = run_name
        self.config = _as_container(config)
        self.params = dict(params) if params is not None else (
            flatten_params(self.config) if self.config else {})
        if not isinstance(overrides, str):
            overrides = " ".join(overrides)
        # host and pid: a run its process could not close is found later (tracking.stale)
        self.tags = {"git_commit": git_commit(), "overrides": overrides, **process_tags(),
                     **(tags or {})}
        self.parent_run_id = parent_run_id
        self.resume_run_id = resume_run_id
        self.flush_seconds = flush_seconds
        self.log_checkpoints = log_checkpoints
        self.dataset, self.plots, self.log_model = dataset, plots, log_model
        self.client = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.artifact_uri: str | None = None  # the run's artifact location
        self.status: str | None = None  # the trainer's verdict, set in on_train_end
        self._trainer = None
        self._pending: list = []
        self._last_flush = 0.0
        self._closed = False
        self._previous_sigterm = None
        self._status_before_resume: str | None = None
        self._logged_through = 0  # the last step a resumed run already has metrics for
        self.logged_history: dict | None = None  # a resumed run's {key: [(step, value)]}
        self._checkpoints = 0  # how many this run logged
        self._last_metrics: dict = {}  # key -> the Metric of its latest evaluation
        self.dataset_entity = None  # the MLflow dataset input, once logged

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def tracking_uri(self) -> str | None:
        return None if self.client is None else self.client.tracking_uri

    def __enter__(self) -> MlflowRun:
        self.client = get_client(self.tracking_uri_requested)
        if self.resume_run_id:
            self._reopen(self.resume_run_id)
        else:
            self._create()
        self._last_flush = time.monotonic()
        self._install_sigterm()
        try:
            if self.config is not None:
                self._log_config_yaml()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _create(self) -> None:
        self.experiment_id = ensure_experiment(self.client, self.experiment_name)
        tags = {"mlflow.user": _user(), "mlflow.source.name": "mlplab", **self.tags}
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        run = self.client.create_run(self.experiment_id, tags=_clip_tags(tags),
                                     run_name=self.run_name)
        self.run_id, self.artifact_uri = run.info.run_id, run.info.artifact_uri
        self._log_params(self.params)

    def _reopen(self, run_id: str) -> None:
        run = run_to_resume(self.client, run_id, self.tracking_uri)
        self.run_id, self.artifact_uri = run_id, run.info.artifact_uri
        self.experiment_id = run.info.experiment_id
        self._status_before_resume = run.info.status
        # The run's evaluations so far, for the resumed fit (its checkpoint holds none). A
        # run killed without cleanup (SIGKILL) may hold metrics past its last checkpoint;
        # the replayed epochs recompute the same values, so they are not logged twice.
        self.logged_history = {
            key: sorted({p.step: p.value for p in self.client.get_metric_history(run_id, key)
                         }.items()) for key in run.data.metrics}
        self._logged_through = max((points[-1][0] for points in self.logged_history.values()
                                    if points), default=0)
        self.client.update_run(run_id, status="RUNNING")
        logged = run.data.params
        fresh = {k: v for k, v in self.params.items() if k not in logged}
        changed = sorted(k for k, v in self.params.items() if k in logged and logged[k] != v)
        self._log_params(fresh)
        tags = dict(self.tags)
        if changed:  # MLflow cannot overwrite params: say what the resumed part used
            tags["resume_changed_params"] = ", ".join(
                f"{k}={self.params[k]}" for k in changed)
        self.set_tags(tags)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._closed or self.run_id is None:
            return False
        self._closed = True
        self._restore_sigterm()
        if (self._status_before_resume is not None and self._trainer is None
                and exc_type is not None and issubclass(exc_type, ConfigError | DataError)):
            # A resume refused before training (bad epochs, no checkpoint) leaves the run's
            # status as it was: a typo must not turn a finished run into a failed one.
            self.status = self._status_before_resume
            try:
                self.client.update_run(self.run_id, status=self.status)
            except Exception:
                log.exception("could not restore MLflow run %s to %s", self.run_id, self.status)
            return False
        status, reason, tags = self.status or "FINISHED", None, {}
        if exc_type is not None:
            killed = issubclass(exc_type, KeyboardInterrupt | SystemExit)
            status = "KILLED" if killed else "FAILED"
            reason = store_error_line(exc, self.tracking_uri) or (
                f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__)
            tags["failure_reason"] = reason
            if killed:
                tags["stop_reason"] = self._stop_reason_of(exc)
        # Never hide the original error behind a tracking error; the metrics still pending
        # may be what the store failed on, and must not keep the status from being written.
        for step in (self.flush, lambda: self._terminate(status, tags)):
            try:
                step()
            except Exception as error:
                line = store_error_line(error, self.tracking_uri) or _first_line(error)
                log.warning("could not close MLflow run %s as %s: %s", self.run_id, status, line)
                if step is not self.flush:  # for the stale-run check of the next command
                    left = tags if status != "FINISHED" else {"failure_reason": line}
                    leave_close(self.run_id, "FAILED" if status == "FINISHED" else status,
                                left)
        self.status = status
        return False

    def _terminate(self, status: str, tags: Mapping[str, str]) -> None:
        if tags:
            self.set_tags(tags)
        self.client.set_terminated(self.run_id, status=status)

    def _stop_reason_of(self, exc) -> str:
        """A run stopped outside the training loop (the trainer's own stop says "after
        epoch K"): which signal, and whether a checkpoint is there to resume from."""
        name = getattr(exc, "signal_name", None) or next(
            (word.strip("()") for word in str(exc).split() if word.strip("()").startswith("SIG")),
            "SIGINT")  # a bare KeyboardInterrupt is Python's SIGINT handler's
        if self.resume_run_id or self._checkpoints:
            return f"interrupted by {name} outside the training loop; resume from its " \
                   "last checkpoint"
        return f"interrupted by {name} before its first checkpoint: nothing to resume from"

    # -- trainer callback -----------------------------------------------------------------

    def on_train_start(self, trainer) -> None:
        self._trainer = trainer
        if self.dataset is not None and self.resume_run_id is None:  # a resumed run has it
            try:
                from mlplab.tracking.datasets import log_dataset_input

                settings = (self.config or {}).get("dataset")
                self.dataset_entity = log_dataset_input(self.client, self.run_id,
                                                        self.dataset, settings)
            except Exception:
                log.exception("could not log the dataset input of run %s", self.run_id)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch <= self._logged_through:
            return
        stamp = _now_ms()
        from mlflow.entities import Metric

        points = [Metric(key, float(value), stamp, epoch) for key, value in metrics.items()]
        self._pending.extend(points)
        self._last_metrics.update((point.key, point) for point in points)
        if (len(self._pending) >= MAX_METRICS_PER_BATCH
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self.flush()

    def on_checkpoint(self, epoch: int, state) -> None:
        self.flush()  # a resumed run must find every metric up to its checkpoint
        if self.log_checkpoints:
            self.client.log_artifact(self.run_id, str(state), "checkpoints")
            self._checkpoints += 1

    def on_train_end(self, status: str, reason: str | None) -> None:
        self.status = status
        tags = {}
        if status == "FAILED" and reason:
            tags["failure_reason"] = reason
        elif reason:
            tags["stop_reason"] = reason
            if status == "FINISHED":
                tags["pruned"] = "true" if reason.lower().startswith("pruned") else "false"
        result = getattr(self._trainer, "result", None)
        objective = getattr(result, "objective", None)
        if objective is not None and np.isfinite(objective):
            # What the job returns to a sweeper; with restored best weights it is not the
            # metric's last logged value, so the sweep summary reads it from here.
            tags.update(objective=repr(float(objective)), objective_metric=result.monitor)
        # The last metrics and the outcome in one write; the logged model is made first, so
        # that the last evaluation's metrics are its metrics in that same write.
        logged = self._new_logged_model(status)
        self.flush(tags, logged.model_id if logged is not None else None)
        if self._trainer is not None:
            self._log_final_artifacts(self._trainer, status, logged)

    # -- logging helpers ------------------------------------------------------------------

    def flush(self, tags: Mapping[str, str] | None = None, model_id: str | None = None) -> None:
        """Write the buffered metrics (in batches of at most 1000); `tags` (a few) go with
        the first batch: each `log_batch` is a store transaction, a run's end needs one.
        With `model_id`, the last evaluation's metrics are also that logged model's."""
        pending, self._pending = self._pending, []
        if model_id is not None:
            pending = self._linked_to(model_id, pending)
        tag_items = []
        if tags:
            from mlflow.entities import RunTag

            tag_items = [RunTag(k, v) for k, v in _clip_tags(tags).items()]
        start = 0
        while start < len(pending) or tag_items:
            self.client.log_batch(self.run_id, tags=tag_items,
                                  metrics=pending[start:start + MAX_METRICS_PER_BATCH])
            start, tag_items = start + MAX_METRICS_PER_BATCH, []
        self._last_flush = time.monotonic()

    def _linked_to(self, model_id: str, pending: list) -> list:
        """`pending` with the last evaluation's points carrying `model_id` (and the dataset
        they were computed on); points of it written already are added again: MLflow keeps
        one copy of an identical point in the run's history, and links the model's."""
        from mlflow.entities import Metric

        entity = self.dataset_entity
        final = {id(point) for point in self._last_metrics.values()}
        waiting = {id(point) for point in pending}

        def linked(m):
            return Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id,
                          dataset_name=entity.name if entity else None,
                          dataset_digest=entity.digest if entity else None)

        return ([linked(m) if id(m) in final else m for m in pending]
                + [linked(m) for m in self._last_metrics.values() if id(m) not in waiting])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.on_epoch_end(step, metrics)

    def log_params(self, params: Mapping) -> None:
        self._log_params({k: param_text(v)[:MAX_PARAM_LENGTH] for k, v in params.items()})

    def _log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in _clip_tags(tags).items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=items[start:start + MAX_PARAMS_PER_BATCH])

    @contextlib.contextmanager
    def artifact_staging(self):
        """A temporary directory whose contents are uploaded as artifacts on leaving."""
        with tempfile.TemporaryDirectory(prefix="mlplab-artifacts-") as staging:
            yield Path(staging)
            copy_artifacts(self._upload, staging, None, self.artifact_uri)

    def _upload(self, local_dir: str, artifact_path: str | None) -> None:
        self.client.log_artifacts(self.run_id, local_dir, artifact_path)

    def log_artifact(self, path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def _log_config_yaml(self) -> None:
        with self.artifact_staging() as staging:
            (staging / "config.yaml").write_text(config_yaml(self.config))

    def _new_logged_model(self, status: str):
        """The logged model a finished run's network becomes (its files come later, in
        `_log_final_artifacts`), a `LoggedModel`; None when no model is logged or it could
        not be made."""
        if status != "FINISHED" or not self.log_model or self.dataset is None \
                or self._trainer is None:
            return None
        try:
            from mlplab.tracking.pyfunc import new_logged_model

            return new_logged_model(self.client, self.run_id, self.experiment_id, self.params,
                                    getattr(self._trainer.result, "epochs_run", 0) or 0)
        except Exception:
            log.exception("could not create the logged model of run %s", self.run_id)
            return None

    def _log_final_artifacts(self, trainer, status: str, logged=None) -> None:
        model, history = trainer.model, getattr(trainer, "history", None)
        with self.artifact_staging() as staging:
            (staging / "weights").mkdir()
            np.savez(staging / "weights" / "final.npz", **model.state_dict())
            if self.plots is not False:
                _draw_plots(model, self.dataset if status == "FINISHED" else None, history,
                            staging / "plots", self.plots)
        if logged is not None:
            try:
                from mlplab.tracking.pyfunc import log_pyfunc_model

                log_pyfunc_model(self.client, self.run_id, model, self.dataset, logged=logged,
                                 run_artifact_uri=self.artifact_uri)
            except Exception:
                log.exception("could not log the pyfunc model of run %s", self.run_id)

    # -- SIGTERM outside the training loop ------------------------------------------------

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into KeyboardInterrupt while the run is open, so `__exit__` runs.

        Without this a terminated job dies at once and its run stays RUNNING forever. The
        trainer installs its own, gentler handler while it fits and restores this one.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        clear_stop()
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _raise_keyboard_interrupt(signum, frame):
    name = signal.Signals(signum).name
    if stopping() is not None:  # the same stop again (forwarded, or to the process group)
        return
    note_stop(name)
    raise KeyboardInterrupt(f"terminated by signal {name}")


def _draw_plots(model, dataset, history, out_dir: Path, selection) -> None:
    """The run's figures via the plots module; learning curves only without a dataset."""
    try:
        from mlplab.tracking import plots
    except ImportError:
        return
    try:
        if dataset is not None:
            plots.log_run_plots(model, dataset, history, out_dir, selection)
        elif history and "learning_curves" in plots.selected_plots(selection):
            out_dir.mkdir(parents=True, exist_ok=True)
            plots.learning_curves(history, out_dir / "learning_curves.png")
    except Exception:
        log.exception("drawing the run's plots failed")


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _clip_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: str(v)[:MAX_TAG_LENGTH] for k, v in tags.items() if v is not None}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
