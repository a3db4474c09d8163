"""What every command shares: the one-line error report and the exit statuses.

Errors in what the user typed or supplied are `ConfigError`/`DataError`; `main` prints them
as one `mlplab: error: ...` line and exits with `EXIT_USAGE`. Statuses for runs stopped by
a signal are `mlplab.signals.EXIT_STATUS`.
"""

from __future__ import annotations

import sys

from mlplab.errors import ConfigError

EXIT_USAGE = 2
EXIT_FAILED = 1


def print_error(message: str) -> None:
    print(f"mlplab: error: {message}", file=sys.stderr)


def raise_usage_error(message: str):
    """For `argparse.ArgumentParser.error`: argparse prints the usage as well, and exits
    before the one-line report; raising keeps every command-line error to one line."""
    raise ConfigError(message)
