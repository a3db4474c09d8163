"""`mlplab train`: a Hydra app (the project's `conf/` directory, primary config
`train.yaml`) with one addition: before Hydra runs anything, every job of the command line
is composed and validated (`mlplab.config.preflight`), so a typo anywhere in a sweep exits with
status 2 and one line on stderr, and no MLflow run (not even a sweep's parent) is created.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
from dataclasses import dataclass

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mlplab.cli._common import EXIT_FAILED, print_error, raise_usage_error
from mlplab.config import conf_dir
from mlplab.config.compose import COMPOSE_ERRORS, hydra_error_line
from mlplab.config.preflight import check_jobs
from mlplab.errors import ConfigError, DataError, MlplabError
from mlplab.job import JobOutcome, context_from_hydra, run_job
from mlplab.multirun.callbacks import close_unfinished_sweep
from mlplab.multirun.progress import note_job_outcome, stop_live_lines
from mlplab.multirun.stopping import sweep_job
from mlplab.multirun.sweeps import local_process_launcher, stops_on_signal, watches_stop_file
from mlplab.private_api import hydra_args_parser, hydra_errors_raised
from mlplab.signals import EXIT_STATUS, SweepInterrupted, signal_of_killed_run
from mlplab.tracking.store import resolve_tracking_uri
from mlplab.tracking.store_errors import translated

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    """What the task function leaves for the CLI after a job run in this process: its
    outcome, or the config/data error that stopped it (reported as one line, status 2)."""

    outcome: JobOutcome | None = None
    error: MlplabError | None = None


def run_task(cfg: DictConfig, report: JobReport) -> float:
    """One Hydra job: run it, note its outcome in `report`, return the value a sweeper
    optimises (NaN for a job of a stopping sweep, which runs nothing)."""
    context = context_from_hydra()
    hydra_cfg = HydraConfig.get()
    pool = local_process_launcher(hydra_cfg) if context.sweep_dir else None
    watch = context.sweep_dir is not None and watches_stop_file(hydra_cfg)
    with sweep_job(context.sweep_dir, own_process=pool is not None or watch,
                   pool_worker=bool(pool), watch=watch) as go:
        if go:
            return _run_task(cfg, context, report)
    return math.nan


def _run_task(cfg: DictConfig, context, report: JobReport) -> float:
    store = resolve_tracking_uri(cfg.logger.tracking_uri) if cfg.logger.name == "mlflow" else None
    try:
        with translated(store):
            outcome = run_job(cfg, context)
    except (ConfigError, DataError) as error:
        if context.sweep_dir is None:
            report.error = error
        else:  # checked up front; if it still happens, this job is lost, not the sweep
            log.error("mlplab: error: %s", error)
        return math.nan
    report.outcome = outcome
    if context.sweep_dir is not None:  # for the sweep's live line
        note_job_outcome(context.sweep_dir, outcome)
    _stop_sweep_if_killed(context, outcome)
    return outcome.value


def task_function(report: JobReport):
    """The function Hydra runs for each job. Launchers that run jobs elsewhere pickle it
    by value (cloudpickle), with a copy of `report` that the CLI never reads."""

    def train(cfg: DictConfig) -> float:
        return run_task(cfg, report)

    return train


def _stop_sweep_if_killed(context, outcome: JobOutcome) -> None:
    """A grid sweep's job that a signal ended KILLED in this process stops the sweep."""
    if (context.sweep_dir is not None and outcome.status == "KILLED"
            and stops_on_signal(HydraConfig.get())):
        raise SweepInterrupted(signal_of_killed_run(outcome.reason), context.sweep_dir)


def _run_hydra(args: list[str], report: JobReport) -> None:
    """Hydra's own entry point on the project's conf/, reading `args` as its command line."""
    saved_argv = sys.argv
    sys.argv = ["mlplab train", *args]
    try:
        hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(
            task_function(report))()
    finally:
        sys.argv = saved_argv


def _show_config(args: list[str], report: JobReport) -> int:
    """`--cfg job|hydra|all`: Hydra composes the config once and prints it; a mistake in
    the overrides is one line (status 2), as for a run, without composing twice."""
    try:
        with hydra_errors_raised():
            _run_hydra(args, report)
    except COMPOSE_ERRORS as error:
        raise ConfigError(hydra_error_line(error)) from error
    return 0


def train_main(args: list[str]) -> int:
    """`mlplab train [OVERRIDES] [-m] [--cfg job] ...`: check everything, then run Hydra."""
    if not (conf_dir() / "train.yaml").is_file():
        raise ConfigError(f"{conf_dir() / 'train.yaml'}: no such file; set MLPLAB_ROOT to the "
                          "mlplab checkout (mlplab is meant to be installed with pip -e)")
    parser = hydra_args_parser()
    parser.prog = "mlplab train"
    parser.error = raise_usage_error
    parsed = parser.parse_args(args)
    modes = [parsed.run, parsed.multirun, parsed.cfg is not None, parsed.info is not None,
             parsed.shell_completion]
    if sum(bool(mode) for mode in modes) > 1:  # Hydra raises a ValueError with a traceback
        raise ConfigError("only one of --run, --multirun (-m), --cfg, --info and "
                          "--shell-completion can be given")
    report = JobReport()
    if parsed.cfg is not None and not parsed.help:
        return _show_config(args, report)
    informational = parsed.help or parsed.hydra_help or parsed.info or parsed.shell_completion
    checked = contextlib.nullcontext()  # what preflight composed is not composed again
    if not informational and parsed.config_dir is None and parsed.experimental_rerun is None:
        checked = check_jobs(parsed.overrides, multirun=parsed.multirun,
                             config_name=parsed.config_name or "train",
                             load_data=parsed.multirun).no_recomposing()
    if parsed.help:  # Hydra lists the schema groups too; they are not choices to make
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):
            _run_hydra(args, report)  # Hydra exits after printing its help
        print("".join(line for line in shown.getvalue().splitlines(keepends=True)
                      if not line.startswith("schema/")), end="")
        return 0
    try:
        with checked:
            _run_hydra(args, report)
    except KeyboardInterrupt as stop:  # outside a training loop, or a grid sweep stopped
        stop_live_lines()  # the sweep's progress line must not run into the error line
        # Hydra skipped the sweep's end: close its parent while MLflow can still be imported.
        name = getattr(stop, "signal_name", "SIGINT")
        close_unfinished_sweep(getattr(stop, "sweep_dir", None), f"interrupted by {name}")
        what = ("sweep stopped; the runs it finished are kept and its parent run is closed "
                "with a stop_reason tag" if parsed.multirun else "run stopped")
        print_error(f"{what} ({name})")
        return getattr(stop, "exit_status", EXIT_STATUS["SIGINT"])
    if report.error is not None:
        raise report.error
    outcome = report.outcome
    if parsed.multirun or outcome is None or outcome.status == "FINISHED":
        return 0
    where = f"run {outcome.run_id} ({outcome.run_name})" if outcome.run_id else outcome.run_name
    print_error(f"{where} {outcome.status}: {outcome.reason}")
    return EXIT_STATUS["SIGINT"] if outcome.status == "KILLED" else EXIT_FAILED
