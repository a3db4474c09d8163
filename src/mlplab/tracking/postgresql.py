"""PostgreSQL as an MLflow store that every node of a cluster writes to directly (the
other way, usually better, is an MLflow server in front of it: docs/scaling.md).

Checked before any run starts, as the other stores are (`mlplab.tracking.store.check_store`):
without its driver SQLAlchemy raises a traceback deep in MLflow's store set-up, and a
server that is not there costs MLflow's connection retries.
"""

from __future__ import annotations

import importlib.util
import socket
from urllib.parse import urlparse, urlunparse

from mlplab.errors import ConfigError

# The module SQLAlchemy imports for `postgresql+<driver>://`; bare `postgresql://` means
# psycopg (version 3) since SQLAlchemy 2.1, which the `cluster` extra installs.
POSTGRESQL_DRIVERS = {"": "psycopg", "psycopg": "psycopg", "psycopg2": "psycopg2",
                      "pg8000": "pg8000", "psycopg2cffi": "psycopg2cffi"}
POSTGRESQL_PORT = 5432


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def check_postgresql(uri: str, key: str, timeout: float) -> None:
    """The driver the URI names is installed, and its server takes TCP connections (one
    connect with a short timeout: MLflow would retry a dead server for minutes)."""
    parsed = urlparse(uri)
    driver = parsed.scheme.partition("+")[2]
    module = POSTGRESQL_DRIVERS.get(driver, driver)
    shown = urlunparse((parsed.scheme, parsed.netloc.rpartition("@")[2], parsed.path,  # no password
                        parsed.params, parsed.query, parsed.fragment))
    if not _installed(module):
        raise ConfigError(f"{key}: a PostgreSQL store ({shown}) needs the Python driver "
                          f"{module!r}, which is not installed; valid choices: "
                          "pip install -c constraints.txt -e '.[cluster]' (the `cluster` "
                          "extra), an http:// MLflow server, or a sqlite:///path.db store")
    if not parsed.hostname or parsed.hostname.startswith("/"):
        return  # a Unix socket: the driver's to report
    address = (parsed.hostname, parsed.port or POSTGRESQL_PORT)
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as error:
        raise ConfigError(f"{key}: cannot reach the PostgreSQL server at {address[0]}:"
                          f"{address[1]} ({error.strerror or error}); valid choices: a "
                          "running server's URI, an http:// MLflow server, or a "
                          "sqlite:///path.db store") from None
