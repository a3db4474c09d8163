"""`hydra/launcher=local_parallel`: a sweep's jobs in a pool of worker processes on this
machine, handed out several at a time and each run with one copy of its config.

The joblib launcher hands loky one task per job, and each task carries the whole sweep
config, the task function, the Hydra context and Hydra's global state (pickled, sent,
unpickled and installed again for every job), then runs Hydra's `run_job`, which copies
the job's full config twice and its `hydra` node three times, and writes `.hydra/*.yaml`
with OmegaConf's pure-Python dumper and sets up logging from scratch. For the small runs
of a grid that is more CPU than the training (`benchmarks/bench_sweep_throughput.py`).

This launcher keeps the joblib launcher's settings and pool (the same `joblib.Parallel`
arguments, so the workers `mlplab.multirun.worker_pool` warms up are the ones that run
the jobs), and:
- sends a task per `batch_size` jobs (`auto`: up to 8, fewer when the sweep is too short
  to keep every worker busy), with Hydra's state once per task;
- runs each job as `run_job` below: what Hydra's `run_job` does for a job (its output
  directory, `hydra.runtime.output_dir`, `HydraConfig`, `.hydra/config.yaml`,
  `hydra.yaml`, `overrides.yaml`, the job's log file, `hydra.job.env_set`, the callbacks,
  the working directory), with one copy of the config (the task's part; `HydraConfig` is
  given the job's own `hydra` node), YAML written by libyaml, and the logging set up again
  only when more than the log file's name changed;
- returns a JobReturn without the job's configs (status, value, overrides, working dir),
  which is all a sweeper reads of it, instead of pickling both configs back.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    env_override,
    filter_overrides,
    setup_globals,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from mlplab.config.sweep_jobs import adopt_composed
from mlplab.private_api import joblib_parallel_arguments
from mlplab.yaml_text import config_yaml

log = logging.getLogger(__name__)

MAX_BATCH = 8  # jobs a task runs at most with batch_size=auto


def batch_size(setting, n_jobs: int, workers: int) -> int:
    """Jobs per task: `setting` when it is a number, else (auto) up to `MAX_BATCH`, so that
    each worker still gets at least two tasks (a last task of a long batch would keep one
    worker busy while the others wait)."""
    if setting not in (None, "auto"):
        return max(1, int(setting))
    return max(1, min(MAX_BATCH, math.ceil(n_jobs / (2 * max(1, workers)))))


def split_batches(jobs: list, size: int, workers: int, *, guided: bool) -> list[list]:
    """`jobs` in tasks of `size`; `guided` (batch_size=auto): of at most `size` and at
    most the jobs still left over twice the workers (down to one job), so that the tasks
    shrink towards the end and the workers finish together, instead of one still running
    a long last task while the others wait."""
    batches, start = [], 0
    while start < len(jobs):
        left = len(jobs) - start
        step = min(size, max(1, math.ceil(left / (2 * max(1, workers))))) if guided else size
        batches.append(jobs[start:start + step])
        start += step
    return batches


def launch(launcher, job_overrides, initial_job_idx: int) -> list[JobReturn]:
    """Run `job_overrides` in the pool; their JobReturns in order."""
    from joblib import Parallel, delayed, effective_n_jobs

    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    arguments = joblib_parallel_arguments(launcher.joblib)
    setting = arguments.pop("batch_size", "auto")
    workers = effective_n_jobs(arguments.get("n_jobs", -1))
    size = batch_size(setting, len(job_overrides), workers)
    log.info("local_parallel: %d jobs in tasks of up to %d on %s workers, sweep output dir: %s",
             len(job_overrides), size, arguments.get("n_jobs"), sweep_dir)
    jobs = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        jobs.append((idx, list(overrides)))
    batches = split_batches(jobs, size, workers, guided=setting in (None, "auto"))
    state = Singleton.get_state()
    loader = launcher.hydra_context.config_loader
    composed = (loader.compose_ahead(config, [overrides for _, overrides in jobs])
                if hasattr(loader, "compose_ahead") else {})
    returned = Parallel(**arguments, batch_size=1)(
        delayed(run_jobs)(batch, launcher.hydra_context, config, launcher.task_function, state,
                          composed)
        for batch in batches)
    return [result for results in returned for result in results]


def run_jobs(jobs, hydra_context, sweep_config: DictConfig, task_function,
             singleton_state, composed=None) -> list[JobReturn]:
    """A task in a worker: Hydra's state installed once, then each job of `jobs`.
    `composed`: the configs the launching process composed for these jobs
    (`ComposeOnceConfigLoader.compose_ahead`)."""
    setup_globals()
    Singleton.set_state(singleton_state)
    adopt_composed(composed or {})
    results = []
    loader = hydra_context.config_loader
    compose = getattr(loader, "reused_sweep_config", loader.load_sweep_config)
    for idx, overrides in jobs:
        config = compose(sweep_config, overrides)
        with open_dict(config.hydra):
            config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
            config.hydra.job.num = idx
        results.append(run_job(hydra_context, task_function, config))
    return results


def run_job(hydra_context, task_function, config: DictConfig) -> JobReturn:
    """One job of a sweep, as Hydra's `run_job(..., job_dir_key="hydra.sweep.dir",
    job_subdir_key="hydra.sweep.subdir")` runs it (see the module docstring). `config` is
    this job's own composed config (with its `hydra` node), changed in place."""
    old_cwd, previous = os.getcwd(), HydraConfig.instance().cfg
    # What `HydraConfig.set_config` makes of it, without its copy of the `hydra` node: the
    # job's config is this job's own, so `HydraConfig.get()` can be its node (the
    # sub-directory may read ${hydra:...}).
    OmegaConf.set_readonly(config.hydra, True)
    HydraConfig.instance().cfg = config
    output_dir = os.path.abspath(os.path.join(str(OmegaConf.select(config, "hydra.sweep.dir")),
                                              str(OmegaConf.select(config, "hydra.sweep.subdir"))))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    hydra_cfg = config.hydra
    task_cfg = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    OmegaConf.set_struct(task_cfg, OmegaConf.is_struct(config))
    OmegaConf.copy_cache(from_config=config, to_config=task_cfg)  # ${now:...} as in hydra.*
    overrides = OmegaConf.to_container(config.hydra.overrides.task)
    chdir = bool(hydra_cfg.job.chdir)
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if chdir:
            os.chdir(output_dir)
        working_dir = output_dir if chdir else os.getcwd()
        _configure_job_log(config)
        if config.hydra.output_subdir is not None:
            _save_job_configs(Path(output_dir) / str(config.hydra.output_subdir), task_cfg,
                              hydra_cfg, overrides)
        ret = JobReturn(overrides=overrides, working_dir=working_dir)
        with env_override(OmegaConf.to_container(hydra_cfg.job.env_set, resolve=True)):
            hydra_context.callbacks.on_job_start(config=config, task_function=task_function)
            try:
                ret.return_value = task_function(task_cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as error:  # noqa: BLE001 -- a failed job, as Hydra records it
                ret.return_value = error
                ret.status = JobStatus.FAILED
        ret.task_name = JobRuntime.instance().get("name")
        for handler in logging.getLogger().handlers:
            handler.flush()
        hydra_context.callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        HydraConfig.instance().cfg = previous
        if chdir:
            os.chdir(old_cwd)


def _save_job_configs(directory: Path, task_cfg, hydra_node, overrides: list) -> None:
    """`.hydra/config.yaml`, `hydra.yaml` (the `hydra` node under its key) and
    `overrides.yaml`, as Hydra writes them (unresolved), through libyaml."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = {"config.yaml": OmegaConf.to_container(task_cfg, resolve=False, enum_to_str=True),
             "hydra.yaml": {"hydra": OmegaConf.to_container(hydra_node, resolve=False,
                                                            enum_to_str=True)}}
    for name, container in texts.items():
        (directory / name).write_text(config_yaml(container), encoding="utf-8")
    (directory / "overrides.yaml").write_text(config_yaml(overrides), encoding="utf-8")


# The job logging this worker set up last, without its log file names. Process state of a
# worker that runs job after job.
_JOB_LOG: list = [None]


def _configure_job_log(config: DictConfig) -> None:
    """Hydra's job logging for this job. From one job to the next of a sweep only the log
    file's name changes (`${hydra.runtime.output_dir}/${hydra.job.name}.log`): then the file
    handlers are pointed at the new files; otherwise the logging is set up as Hydra does."""
    if config.hydra.job_logging is None:
        configure_log(None, config.hydra.verbose)
        return
    settings = OmegaConf.to_container(config.hydra.job_logging, resolve=True)
    handlers = settings.get("handlers") or {}
    files = {name: spec.pop("filename") for name, spec in handlers.items()
             if isinstance(spec, dict) and "filename" in spec}
    shape = (repr(settings), str(config.hydra.verbose))
    opened = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    if _JOB_LOG[0] == shape and len(opened) == len(files) and files:
        for handler, filename in zip(opened, files.values(), strict=True):
            _reopen(handler, filename)
    else:
        configure_log(config.hydra.job_logging, config.hydra.verbose)
    _JOB_LOG[0] = shape


def _reopen(handler: logging.FileHandler, filename: str) -> None:
    """Point a file handler at another file (as `logging.FileHandler(filename)` opens it)."""
    handler.acquire()
    try:
        if handler.stream is not None:
            handler.stream.flush()
            handler.stream.close()
        handler.baseFilename = os.path.abspath(filename)
        handler.stream = None if handler.delay else open(  # noqa: SIM115 -- the handler's
            handler.baseFilename, handler.mode, encoding=handler.encoding,
            errors=handler.errors)
    finally:
        handler.release()
