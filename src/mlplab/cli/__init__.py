"""The `mlplab` command: one module per subcommand, dispatched by `mlplab.cli.main`."""

from mlplab.cli.dispatch import main

__all__ = ["main"]
