"""One job, wired together: config -> dataset -> model -> optimizer -> trainer -> MLflow.

`run_job(cfg)` is what every Hydra job runs, in the CLI's process for a single run and in
worker processes under a parallel launcher. It returns the monitored metric (what a
sweeper optimises), or NaN when the run failed (diverged) or was killed, so one bad point
never stops a sweep. Hydra and MLflow stop here: the engine, data and trainer get plain
values.
"""

from __future__ import annotations

import gc
import logging
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from mlplab.config import preset_name, validate, validate_for_dataset
from mlplab.config_validation import output_head

log = logging.getLogger(__name__)

# Override keys that say where or how a run is recorded, not what it trains: left out of
# the run name so that the same model gets the same name wherever it is logged.
_NOT_IN_RUN_NAME = re.compile(
    r"^[+~]*(experiment|experiment_name|run_name|data_dir|logger|tags|trial|hydra"
    r"|trainer\.(progress|blas_threads|resume|checkpoint_every))\b")
_PARALLEL_LAUNCHERS = ("joblib", "submitit", "ray", "rq")


@dataclass
class JobContext:
    """What a job knows of how Hydra launched it."""

    preset: str = "default"
    overrides: list[str] = field(default_factory=list)
    sweep_dir: str | None = None  # set for the jobs of a sweep
    parallel: bool = False  # launched next to other jobs on the same cores
    cpus: int | None = None  # cores the cluster allocated to this job, when it says


@dataclass
class JobOutcome:
    """The last job's outcome, read by the CLI after a single run."""

    status: str
    reason: str | None = None
    run_id: str | None = None
    run_name: str = ""
    value: float = math.nan
    monitor: str = ""
    tracking_uri: str | None = None
    metrics: dict = field(default_factory=dict)


LAST_OUTCOME: JobOutcome | None = None
_JOBS_STARTED = 0  # run_job calls in this process


def _freeze_long_lived_objects() -> None:
    """Keep the garbage collector off what lives as long as the process, from its second
    job on.

    A sweep worker holds ~400,000 objects that never die (Hydra, MLflow and SQLAlchemy,
    scikit-learn, matplotlib, their caches). Each full collection walks them all, ~0.3 s
    of CPU, and a loky worker gets one after most jobs (loky collects after a task when
    psutil is absent) plus Python's own: together ~30% of a short job. After a first job
    every lazy import has happened, so what survives a collection is module state; frozen
    (`gc.freeze`), it is left out of later collections. Once per process.
    """
    gc.collect()
    gc.freeze()


def context_from_hydra() -> JobContext:
    """The JobContext of the Hydra job running in this process."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN
    target = str(OmegaConf.select(hydra, "launcher._target_", default="") or "")
    on_cluster = target.endswith("SlurmLauncher")  # each job has cores of its own
    return JobContext(preset=preset_name(),
                      overrides=list(hydra.overrides.task),
                      sweep_dir=str(hydra.sweep.dir) if multirun else None,
                      parallel=multirun and not on_cluster
                      and any(name in target for name in _PARALLEL_LAUNCHERS),
                      cpus=OmegaConf.select(hydra, "launcher.cpus_per_task", default=None)
                      if on_cluster else None)


def run_name(cfg: DictConfig, context: JobContext) -> str:
    """`<preset>/<overrides that change the model>`, e.g. `quick_moons/optimizer.lr=0.1`."""
    if cfg.run_name:
        return str(cfg.run_name)
    kept: dict[str, str] = {}  # key -> its last override, which is the one in effect
    for override in context.overrides:
        if not _NOT_IN_RUN_NAME.match(override):
            kept[override.lstrip("+").split("=", 1)[0]] = override.lstrip("+")
    return context.preset + ("/" + ",".join(kept.values()) if kept else "")


def load_data(cfg: DictConfig):
    from mlplab.data import load_dataset

    params = OmegaConf.to_container(cfg.dataset, resolve=True)
    name = params.pop("name")
    return load_dataset(name, data_dir=cfg.data_dir, seed=cfg.seed, dtype=cfg.trainer.dtype,
                        **params)


def build_model(cfg: DictConfig, dataset):
    """The MLP for this dataset: its input width, the hidden layers, the task's output."""
    from mlplab.nn import MLP
    from mlplab.nn.activations import get_activation
    from mlplab.nn.initializers import get_initializer

    arch, init = cfg.architecture, cfg.initializer
    out_activation, loss = output_head(cfg, dataset.task)
    hidden_activation = get_activation(arch.activation, **arch.activation_params)
    scheme = {k: init[k] for k in ("std", "a", "gain") if k in init}
    bias = {"zeros": "zeros", "same": "same"}.get(init.bias) or get_initializer(
        "constant", value=init.bias_value)
    return MLP([dataset.n_features, *arch.hidden, dataset.n_outputs],
               [hidden_activation] * len(arch.hidden) + [out_activation], loss,
               dtype=cfg.trainer.dtype, weight_init=get_initializer(init.name, **scheme),
               bias_init=bias, seed=cfg.seed, rng="legacy" if init.legacy else None)


def build_optimizer(cfg: DictConfig, model):
    from mlplab.nn.optimizers import get_optimizer

    settings = OmegaConf.to_container(cfg.optimizer, resolve=True)
    name, lr = settings.pop("name"), settings.pop("lr")
    if "betas" in settings:
        settings["beta1"], settings["beta2"] = settings.pop("betas")
    return get_optimizer(name, model.params, lr, param_names=model.param_names, **settings)


def build_schedule(cfg: DictConfig):
    from mlplab.nn.schedules import get_schedule

    settings = OmegaConf.to_container(cfg.schedule, resolve=True)
    return get_schedule(settings.pop("name"), cfg.optimizer.lr, **settings)


def logged_config(cfg: DictConfig, dataset, name: str) -> dict:
    """The resolved config as logged: inferred values (output head, run name) filled in."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    activation, loss = output_head(cfg, dataset.task)
    resolved["architecture"].update(output_activation=activation, loss=loss)
    resolved["run_name"] = name
    return resolved


def _parent_run_id(context: JobContext) -> str | None:
    if context.sweep_dir is None:
        return None
    from mlplab.tracking.sweep import read_parent_run

    parent = read_parent_run(context.sweep_dir)
    return parent["run_id"] if parent else None


def _latest_checkpoint(cfg: DictConfig, directory: str) -> Path:
    """Download the newest `checkpoints/*.npz` of the run named by `trainer.resume`, before
    that run is re-opened (a run without checkpoints is left untouched)."""
    from mlplab.errors import DataError
    from mlplab.tracking.run import run_to_resume
    from mlplab.tracking.store import get_client

    run_id = cfg.trainer.resume
    client = get_client(cfg.logger.tracking_uri)
    run_to_resume(client, run_id, client.tracking_uri)
    names = sorted(a.path for a in client.list_artifacts(run_id, "checkpoints")
                   if a.path.endswith(".npz"))
    if not names:
        raise DataError(f"trainer.resume: run {run_id} has no checkpoints/*.npz artifact to "
                        "resume from; valid choices: a run logged with trainer.checkpoint_every "
                        "set, or one that was killed")
    # Into <run id>/checkpoints/, so that an error about the file names the run and artifact.
    target = Path(directory) / run_id / "checkpoints"
    target.mkdir(parents=True)
    return Path(client.download_artifacts(run_id, names[-1], str(target)))


def _set_blas_threads(cfg: DictConfig, context: JobContext) -> None:
    from mlplab.nn.threads import set_blas_threads

    threads = cfg.trainer.blas_threads or (1 if context.parallel else context.cpus)
    if threads is not None:
        set_blas_threads(threads)


# What `logger.plots: null` draws for a sweep's child: the figures that compare runs are the
# parent's sweep plots, and the full set (~0.4 s of CPU a run) would cost more than a short
# run itself; the learning curves (~0.08 s) stay, to see at a glance how a child trained.
SWEEP_CHILD_PLOTS = ("learning_curves",)


def run_plots(cfg: DictConfig, context: JobContext):
    """`logger.plots` as MlflowRun takes it: null means every figure for a single run and
    `SWEEP_CHILD_PLOTS` for the jobs of a sweep; true/false are taken as they are."""
    plots = cfg.logger.plots
    if plots is None:
        return list(SWEEP_CHILD_PLOTS) if context.sweep_dir is not None else True
    return plots


def make_mlflow_run(cfg: DictConfig, context: JobContext, dataset, name: str):
    """The MlflowRun of this job (not yet open): a sweep's child when a parent exists."""
    from mlplab.nn.threads import blas_threads_in_use
    from mlplab.tracking.run import MlflowRun

    logger = cfg.logger
    tags = {**cfg.tags, "preset": context.preset, "blas_threads": str(blas_threads_in_use())}
    return MlflowRun(
        cfg.experiment_name, tracking_uri=logger.tracking_uri, run_name=name,
        config=logged_config(cfg, dataset, name), tags=tags, overrides=context.overrides,
        parent_run_id=_parent_run_id(context), resume_run_id=cfg.trainer.resume,
        log_checkpoints=logger.log_checkpoints, dataset=dataset, plots=run_plots(cfg, context),
        log_model=logger.log_model)


def make_trainer(cfg: DictConfig, model, optimizer, callbacks):
    from mlplab.training import Trainer

    settings = cfg.trainer
    stopping = OmegaConf.to_container(settings.early_stopping)
    stopping.update(monitor=settings.monitor, mode=settings.mode)
    return Trainer(model, optimizer, epochs=settings.epochs, batch_size=settings.batch_size,
                   shuffle=settings.shuffle, seed=cfg.seed, log_every=settings.log_every,
                   schedule=build_schedule(cfg), early_stopping=stopping,
                   checkpoint_every=settings.checkpoint_every,
                   train_metrics=settings.train_metrics, metrics=list(settings.extra_metrics),
                   monitor=settings.monitor, mode=settings.mode, progress=settings.progress,
                   callbacks=callbacks)


def run_job(cfg: DictConfig, context: JobContext | None = None) -> float:
    """Train one configuration; return its monitored metric (NaN if it failed).

    Config and data problems raise ConfigError/DataError before any MLflow run exists.
    """
    global LAST_OUTCOME, _JOBS_STARTED
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
        from mlplab.search.pruning import PruningCallback

        callbacks.append(PruningCallback(cfg.trial, cfg.trainer.monitor, cfg.trainer.mode))
    outcome = LAST_OUTCOME = JobOutcome(status="RUNNING", run_name=name,
                                        monitor=cfg.trainer.monitor)
    if cfg.logger.name == "none":
        result = make_trainer(cfg, model, optimizer, callbacks).fit(dataset)
    else:
        mlflow_run = make_mlflow_run(cfg, context, dataset, name)
        trainer = make_trainer(cfg, model, optimizer, [mlflow_run, *callbacks])
        with tempfile.TemporaryDirectory(prefix="mlplab-resume-") as scratch:
            resume_from = _latest_checkpoint(cfg, scratch) if cfg.trainer.resume else None
            with mlflow_run:
                outcome.run_id = mlflow_run.run_id
                outcome.tracking_uri = mlflow_run.tracking_uri
                result = trainer.fit(dataset, resume_from=resume_from)
    outcome.status, outcome.reason = result.status, result.reason
    outcome.metrics = dict(result.metrics)
    objective = result.objective
    outcome.value = (float(objective) if result.status == "FINISHED" and objective is not None
                     else math.nan)
    _log_outcome(outcome)
    return outcome.value


def _log_outcome(outcome: JobOutcome) -> None:
    where = f"run {outcome.run_id} ({outcome.run_name})" if outcome.run_id else outcome.run_name
    if outcome.status == "FINISHED":
        shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(outcome.metrics.items()))
        log.info("%s FINISHED: %s", where, shown)
    else:
        log.warning("%s %s: %s", where, outcome.status, outcome.reason)
