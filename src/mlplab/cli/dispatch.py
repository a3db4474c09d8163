"""`mlplab <command> ...`: dispatch to one module per command.

Each command's module is imported only when that command runs, for start-up speed:
`mlplab runs` need not import Hydra, `mlplab train` need not import MLflow.
"""

from __future__ import annotations

import importlib.util
import sys

from mlplab.cli._common import EXIT_USAGE, print_error
from mlplab.errors import ConfigError, DataError, choices

USAGE = """\
usage: mlplab <command> [arguments]

commands:
  train [OVERRIDES] [-m] [--cfg job]   one run, or with -m a sweep (one MLflow child per job)
  runs [--experiment NAME] [--sweep latest|ID] [--filter F] [--sort METRIC] [--limit N]
       [--group-by PARAM ...] [--stale] [--diff RUN_A RUN_B]
       [--format table|csv|json|markdown]
                                        compare logged runs as a table
  ui [--port P] [--host 127.0.0.1]      the MLflow UI on the project's store
  data ...                              fetch and check datasets (mlplab data mnist)
  reproduce ...                         re-run logged runs or the tutorials

`mlplab train --help` lists the config groups and keys; see docs/usage.md.
"""

# Each command's module is imported when that command runs (start-up speed, see above).
def _train(args: list[str]) -> int:
    from mlplab.multirun import forkserver

    if ("-m" in args or "--multirun" in args) and forkserver.names_pool_launcher(args):
        forkserver.start()  # the pool's imports, while this process composes the sweep
    from mlplab.cli.train import train_main

    return train_main(args)


def _runs(args: list[str]) -> int:
    from mlplab.cli.runs import runs_main

    return runs_main(args)


def _ui(args: list[str]) -> int:
    from mlplab.cli.ui import ui_main

    return ui_main(args)


def _data(args: list[str]) -> int:
    from mlplab.cli.data import data_main

    return data_main(args)


def _reproduce(args: list[str]) -> int:
    if importlib.util.find_spec("mlplab.cli.reproduce") is None:
        raise ConfigError("reproduce: not available in this installation (no "
                          "mlplab.cli.reproduce module); valid commands: " + choices(COMMANDS))
    from mlplab.cli.reproduce import main as reproduce_main

    return reproduce_main(args)


COMMANDS = {"train": _train, "runs": _runs, "ui": _ui, "data": _data, "reproduce": _reproduce}


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
        print_error(f"unknown command {command!r}; valid choices: {choices(COMMANDS)}")
        return EXIT_USAGE
    try:
        return COMMANDS[command](rest) or 0
    except (ConfigError, DataError) as error:
        print_error(str(error))
        return EXIT_USAGE
    except Exception as error:  # a store failure a command did not expect, if we can name it
        # Imported here, for start-up speed: the tracking package imports MLflow's helpers.
        from mlplab.tracking.store_errors import store_error_line

        line = store_error_line(error)
        if line is None:
            raise
        print_error(line)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
