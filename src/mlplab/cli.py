"""The `mlplab` command: train | runs | ui | data | reproduce.

`mlplab train` is a Hydra app (the project's `conf/` directory, primary config
`train.yaml`) with one addition: before Hydra runs anything, every job of the command line
is composed and validated (`mlplab.preflight`), so a typo anywhere in a sweep exits with
status 2 and one line on stderr, and no MLflow run (not even a sweep's parent) is created.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import math
import sys

from omegaconf import DictConfig

from mlplab.errors import ConfigError, DataError, MlplabError, choices

log = logging.getLogger(__name__)

USAGE = """\
usage: mlplab <command> [arguments]

commands:
  train [OVERRIDES] [-m] [--cfg job]   one run, or with -m a sweep (one MLflow child per job)
  runs [--experiment NAME] [--filter F] [--sort METRIC] [--group-by PARAM ...] [--csv|--markdown]
                                        compare logged runs as a table
  ui [--port P] [--host 127.0.0.1]      the MLflow UI on the project's store
  data ...                              fetch and check datasets (mlplab data mnist)
  reproduce ...                         re-run logged runs or the tutorials

`mlplab train --help` lists the config groups and keys; see docs/usage.md.
"""

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_KILLED = 130

# Set by the task function when a single run stops on a config/data error, so that the CLI
# (not Hydra) reports it: one line and status 2.
_TASK_ERROR: MlplabError | None = None


def _error(message: str) -> None:
    print(f"mlplab: error: {message}", file=sys.stderr)


def raise_usage_error(message: str):
    """For `argparse.ArgumentParser.error`: argparse prints the usage as well, and exits
    before the one-line report; raising keeps every command-line error to one line."""
    raise ConfigError(message)


def _task(cfg: DictConfig) -> float:
    """What Hydra runs for each job (module level: launchers pickle it by reference)."""
    global _TASK_ERROR
    from mlplab.app import context_from_hydra, run_job

    context = context_from_hydra()
    try:
        value = run_job(cfg, context)
    except (ConfigError, DataError) as error:
        if context.sweep_dir is None:
            _TASK_ERROR = error
        else:  # checked up front; if it still happens, this job is lost, not the sweep
            log.error("mlplab: error: %s", error)
        return math.nan
    _stop_sweep_if_killed(context)
    return value


def _close_unfinished_sweeps() -> None:
    """Parent runs Hydra left open (a job raised, or a signal stopped the sweep), closed
    while the interpreter can still import MLflow (see mlplab.tracking.sweep)."""
    from mlplab.tracking.sweep import close_unfinished_sweeps

    close_unfinished_sweeps()


def _stop_sweep_if_killed(context) -> None:
    """A grid sweep's job that a signal ended KILLED in this process stops the sweep."""
    from hydra.core.hydra_config import HydraConfig

    from mlplab.app import LAST_OUTCOME
    from mlplab.search.interrupts import signal_of_killed_run
    from mlplab.sweep_signals import SweepInterrupted, stops_on_signal

    if (context.sweep_dir is not None and LAST_OUTCOME is not None
            and LAST_OUTCOME.status == "KILLED" and stops_on_signal(HydraConfig.get())):
        raise SweepInterrupted(signal_of_killed_run(LAST_OUTCOME.reason))


def _run_hydra(args: list[str]) -> None:
    """Hydra's own entry point on the project's conf/, reading `args` as its command line."""
    import hydra

    from mlplab.config import conf_dir

    saved_argv = sys.argv
    sys.argv = ["mlplab train", *args]
    try:
        hydra.main(config_path=str(conf_dir()), config_name="train", version_base="1.3")(_task)()
    finally:
        sys.argv = saved_argv


def train_main(args: list[str]) -> int:
    """`mlplab train [OVERRIDES] [-m] [--cfg job] ...`: check everything, then run Hydra."""
    global _TASK_ERROR
    from hydra._internal.utils import get_args_parser

    from mlplab import app
    from mlplab.config import conf_dir
    from mlplab.preflight import check_command_line, skip_recomposing

    if not (conf_dir() / "train.yaml").is_file():
        raise ConfigError(f"{conf_dir() / 'train.yaml'}: no such file; set MLPLAB_ROOT to the "
                          "mlplab checkout (mlplab is meant to be installed with pip -e)")
    parser = get_args_parser()
    parser.prog = "mlplab train"
    parser.error = raise_usage_error
    parsed = parser.parse_args(args)
    modes = [parsed.run, parsed.multirun, parsed.cfg is not None, parsed.info is not None,
             parsed.shell_completion]
    if sum(bool(mode) for mode in modes) > 1:  # Hydra raises a ValueError with a traceback
        raise ConfigError("only one of --run, --multirun (-m), --cfg, --info and "
                          "--shell-completion can be given")
    informational = parsed.help or parsed.hydra_help or parsed.info or parsed.shell_completion
    checked: set = set()  # the sweep's jobs composed and validated here
    if not informational and parsed.config_dir is None and parsed.experimental_rerun is None:
        check_command_line(parsed.overrides, multirun=parsed.multirun,
                           config_name=parsed.config_name or "train",
                           values=parsed.cfg is None,
                           load_data=parsed.multirun and parsed.cfg is None,
                           checked=checked if parsed.multirun else None)
    _TASK_ERROR, app.LAST_OUTCOME = None, None
    if parsed.help:  # Hydra lists the schema groups too; they are not choices to make
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown), contextlib.suppress(SystemExit):
            _run_hydra(args)  # Hydra exits after printing its help
        print("".join(line for line in shown.getvalue().splitlines(keepends=True)
                      if not line.startswith("schema/")), end="")
        return 0
    try:
        with skip_recomposing(checked):
            _run_hydra(args)
    except KeyboardInterrupt as stop:  # outside a training loop, or a grid sweep stopped
        name = getattr(stop, "signal_name", "SIGINT")
        what = ("sweep stopped; the runs it finished are kept and its parent run is closed "
                "with a stop_reason tag" if parsed.multirun else "run stopped")
        _error(f"{what} ({name})")
        return getattr(stop, "exit_status", EXIT_KILLED)
    finally:
        _close_unfinished_sweeps()
    if _TASK_ERROR is not None:
        raise _TASK_ERROR
    outcome = app.LAST_OUTCOME
    if parsed.multirun or outcome is None or outcome.status == "FINISHED":
        return 0
    where = f"run {outcome.run_id} ({outcome.run_name})" if outcome.run_id else outcome.run_name
    _error(f"{where} {outcome.status}: {outcome.reason}")
    return EXIT_KILLED if outcome.status == "KILLED" else EXIT_FAILED


def runs_main(args: list[str]) -> int:
    from mlplab.cli_runs import runs_main as run

    return run(args)


def ui_main(args: list[str]) -> int:
    from mlplab.cli_ui import ui_main as run

    return run(args)


def data_main(args: list[str]) -> int:
    from mlplab.data.cli import data_main as run

    return run(args) or 0


def reproduce_main(args: list[str]) -> int:
    if importlib.util.find_spec("mlplab.reproduce") is None:
        raise ConfigError("reproduce: not available in this installation (no mlplab.reproduce "
                          "module); valid commands: " + choices(COMMANDS))
    from mlplab.reproduce import main as run

    return run(args) or 0


COMMANDS = {"train": train_main, "runs": runs_main, "ui": ui_main, "data": data_main,
            "reproduce": reproduce_main}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        from mlplab import __version__

        print(f"mlplab {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        _error(f"unknown command {command!r}; valid choices: {choices(COMMANDS)}")
        return EXIT_USAGE
    try:
        return COMMANDS[command](rest)
    except (ConfigError, DataError) as error:
        _error(str(error))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
