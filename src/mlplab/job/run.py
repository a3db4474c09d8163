"""One job, wired together: config -> dataset -> model -> optimizer -> trainer -> MLflow.

`run_job(cfg)` is what every Hydra job runs, in the CLI's process for a single run and in
worker processes under a parallel launcher. It returns the job's `JobOutcome`, whose
`value` is the monitored metric (what a sweeper optimises), or NaN when the run failed
(diverged) or was killed, so one bad point never stops a sweep. Hydra and MLflow stop
here: the engine, data and trainer get plain values.
"""

from __future__ import annotations

import gc
import logging
import math
import re
import tempfile
from dataclasses import dataclass, field

import numpy as np
from omegaconf import DictConfig, OmegaConf

from mlplab.config.validation import output_head, validate, validate_for_dataset
from mlplab.job.build import build_model, build_optimizer, load_data, make_trainer
from mlplab.job.context import JobContext
from mlplab.job.resume import checkpoint_to_resume
from mlplab.nn.threads import blas_threads_in_use, set_blas_threads
from mlplab.search.pruning import PruningCallback
from mlplab.tracking.params import compared_params
from mlplab.tracking.run import MlflowRun
from mlplab.tracking.sweep import read_parent_run, sweep_tags

log = logging.getLogger(__name__)

# Override keys that say where or how a run is recorded, not what it trains: left out of
# the run name so that the same model gets the same name wherever it is logged.
_NOT_IN_RUN_NAME = re.compile(
    r"^[+~]*(experiment|experiment_name|run_name|data_dir|logger|tags|trial|hydra"
    r"|trainer\.(progress|blas_threads|resume|checkpoint_every))\b")


@dataclass
class JobOutcome:
    """What one job ended with: `run_job` returns it; `value` is what a sweeper optimises."""

    status: str
    reason: str | None = None
    run_id: str | None = None
    run_name: str = ""
    value: float = math.nan
    monitor: str = ""
    tracking_uri: str | None = None
    metrics: dict = field(default_factory=dict)


# How many jobs this process has started: process state (a sweep worker runs many), read
# only to freeze long-lived objects once, at the second; no result travels through it.
_JOBS_STARTED = 0


def _freeze_long_lived_objects() -> None:
    """Keep the garbage collector off what lives as long as the process, from its second
    job on.

    A sweep worker holds hundreds of thousands of objects that never die (Hydra, MLflow
    and SQLAlchemy, scikit-learn, matplotlib, their caches). Each full collection walks
    them all, and a loky worker gets one after most jobs (loky collects after a task when
    psutil is absent) plus Python's own: a large share of a short job
    (`benchmarks/bench_harness.py --part sweep` measures it). After a first job
    every lazy import has happened, so what survives a collection is module state; frozen
    (`gc.freeze`), it is left out of later collections. Once per process.
    """
    gc.collect()
    gc.freeze()


def run_name(cfg: DictConfig, context: JobContext) -> str:
    """`<preset>/<overrides that change the model>`, e.g. `quick_moons/optimizer.lr=0.1`."""
    if cfg.run_name:
        return str(cfg.run_name)
    kept: dict[str, str] = {}  # key -> its last override, which is the one in effect
    for override in context.overrides:
        if not _NOT_IN_RUN_NAME.match(override):
            kept[override.lstrip("+").split("=", 1)[0]] = override.lstrip("+")
    return context.preset + ("/" + ",".join(kept.values()) if kept else "")


def logged_config(cfg: DictConfig, dataset, name: str) -> dict:
    """The resolved config as logged: inferred values (output head, run name) filled in."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    activation, loss = output_head(cfg, dataset.task)
    resolved["architecture"].update(output_activation=activation, loss=loss)
    resolved["dataset"].update(dataset.info.get("resolved_keys", {}))  # e.g. a file's sha256
    resolved["run_name"] = name
    return resolved


def _parent_run(context: JobContext) -> dict | None:
    return None if context.sweep_dir is None else read_parent_run(context.sweep_dir)


def _set_blas_threads(cfg: DictConfig, context: JobContext) -> None:
    threads = cfg.trainer.blas_threads or (1 if context.parallel else context.cpus)
    if threads is not None:
        set_blas_threads(threads)


def run_plots(cfg: DictConfig, context: JobContext):
    """`logger.plots` as MlflowRun takes it: null means every figure for a single run and
    none for the jobs of a sweep; true/false are taken as they are.

    A sweep's child draws no PNG unless asked: its learning curves are what the MLflow UI
    draws from its metrics (the Model metrics tab, and the chart view across runs), the
    figures that compare runs are the parent's sweep plots, and drawing even one figure
    costs more than a short run's training (`benchmarks/bench_sweep_throughput.py`)."""
    plots = cfg.logger.plots
    if plots is None:
        return context.sweep_dir is None
    return plots


def make_mlflow_run(cfg: DictConfig, context: JobContext, dataset, name: str):
    """The MlflowRun of this job (not yet open): a sweep's child when a parent exists."""
    logger, parent = cfg.logger, _parent_run(context)
    tags = {**cfg.tags, "preset": context.preset, "blas_threads": str(blas_threads_in_use()),
            **sweep_tags(parent), **context.run_tags, **dataset.info.get("run_tags", {})}
    config = logged_config(cfg, dataset, name)
    return MlflowRun(
        cfg.experiment_name, tracking_uri=logger.tracking_uri, run_name=name,
        config=config, params=compared_params(config), tags=tags, overrides=context.overrides,
        parent_run_id=parent["run_id"] if parent else None, resume_run_id=cfg.trainer.resume,
        log_checkpoints=logger.log_checkpoints, dataset=dataset, plots=run_plots(cfg, context),
        log_model=logger.log_model)


def run_job(cfg: DictConfig, context: JobContext | None = None) -> JobOutcome:
    """Train one configuration; return its outcome, whose `value` is the monitored metric
    (NaN if the run failed or was killed).

    Config and data problems raise ConfigError/DataError before any MLflow run exists.
    """
    global _JOBS_STARTED
    context = context or JobContext()
    _JOBS_STARTED += 1
    if _JOBS_STARTED == 2:  # this process runs jobs one after another: a sweep's
        _freeze_long_lived_objects()
    validate(cfg)
    _set_blas_threads(cfg, context)
    # The tutorials draw data and weights from the global stream, in that order.
    np.random.seed(cfg.seed)  # noqa: NPY002
    dataset = load_data(cfg)
    validate_for_dataset(cfg, dataset)
    model = build_model(cfg, dataset)
    optimizer = build_optimizer(cfg, model)
    name = run_name(cfg, context)
    callbacks = []
    if cfg.trial.storage is not None:
        callbacks.append(PruningCallback(cfg.trial, cfg.trainer.monitor, cfg.trainer.mode))
    outcome = JobOutcome(status="RUNNING", run_name=name, monitor=cfg.trainer.monitor)
    if cfg.logger.name == "none":
        result = make_trainer(cfg, model, optimizer, callbacks).fit(dataset)
    else:
        mlflow_run = make_mlflow_run(cfg, context, dataset, name)
        trainer = make_trainer(cfg, model, optimizer, [mlflow_run, *callbacks])
        with tempfile.TemporaryDirectory(prefix="mlplab-resume-") as scratch:
            resume_from = (checkpoint_to_resume(cfg, mlflow_run.params, scratch)
                           if cfg.trainer.resume else None)
            with mlflow_run:
                outcome.run_id = mlflow_run.run_id
                outcome.tracking_uri = mlflow_run.tracking_uri
                result = trainer.fit(dataset, resume_from=resume_from,
                                     history=mlflow_run.logged_history)
    outcome.status, outcome.reason = result.status, result.reason
    outcome.metrics = dict(result.metrics)
    objective = result.objective
    outcome.value = (float(objective) if result.status == "FINISHED" and objective is not None
                     else math.nan)
    _log_outcome(outcome)
    return outcome


def _log_outcome(outcome: JobOutcome) -> None:
    where = f"run {outcome.run_id} ({outcome.run_name})" if outcome.run_id else outcome.run_name
    if outcome.status == "FINISHED":
        shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(outcome.metrics.items()))
        log.info("%s FINISHED: %s", where, shown)
    else:
        log.warning("%s %s: %s", where, outcome.status, outcome.reason)
