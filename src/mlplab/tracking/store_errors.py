"""Store failures we can name, as one line naming the store and what to do.

MLflow wraps SQLAlchemy, which wraps SQLite (or the operating system): a corrupt file, a
read-only filesystem or a full disk reach the user as an `MlflowException` of dozens of
lines whose last one is SQLite's own words. `store_error_line` walks an error's chain and
recognises those words (and `OSError`'s errno); `StoreError` is the `ConfigError` the
commands print as one line with status 2, as for any other mistake in what the user
pointed mlplab at. An error nobody here can name is left as it is: a traceback is then a
bug to report, not a message to hide.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from urllib.parse import quote

from mlplab.errors import ConfigError

# (words of SQLite, SQLAlchemy or MLflow in the error's text, what the store is, what to do)
_FAULTS = (
    (("database disk image is malformed", "file is not a database",
      "malformed database schema"),
     "is corrupt", "restore it from a backup, or give logger.tracking_uri a new file"),
    (("attempt to write a readonly database", "read-only file system", "readonly database"),
     "is read-only", "make the file and its directory writable, or give another store"),
    (("database or disk is full", "no space left on device", "disk quota exceeded"),
     "is on a full disk", "free space on that filesystem, or give a store elsewhere"),
    (("unable to open database file",),
     "cannot be opened", "check that the file and its directory exist and are writable"),
)
_ERRNOS = {errno.ENOSPC: 2, errno.EDQUOT: 2, errno.EROFS: 1}


class StoreError(ConfigError):
    """A tracking store that cannot be used as it is: one line, naming it."""


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def store_label(uri: str | None) -> str:
    """How a line names the store: a SQLite store by its file, any other by its URI."""
    if not uri:
        return "the tracking store"
    uri = str(uri)
    return "tracking store " + (uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri)


def store_error_line(error: BaseException, uri: str | None = None) -> str | None:
    """One line for `error` if it is a store failure we can name, else None."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in _ERRNOS:
            _, what, todo = _FAULTS[_ERRNOS[link.errno]]
            return _line(uri, what, link.strerror or str(link), todo)
        text = str(link).lower()
        for words, what, todo in _FAULTS:
            found = next((w for w in words if w in text), None)
            if found:
                return _line(uri, what, found, todo)
    return None


def _line(uri, what: str, why: str, todo: str) -> str:
    return f"{store_label(uri)} {what} ({why}); valid choices: {todo}"


@contextlib.contextmanager
def translated(uri: str | None):
    """Raise a `StoreError` for a store failure we can name inside the block."""
    try:
        yield
    except StoreError:
        raise
    except Exception as error:
        line = store_error_line(error, uri)
        if line is None:
            raise
        raise StoreError(line) from error


def check_sqlite_file(path: str, uri: str) -> None:
    """SQLite's own quick integrity check of an existing store file, read-only and without
    MLflow: a sweep's launching process checks the store before its parent run exists, and
    does not import MLflow (its workers do the MLflow work). A corrupt file is a
    `StoreError`; an intact one is left as it was."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as error:
        line = store_error_line(error, uri)
        if line is None:
            raise
        raise StoreError(line) from error
    if verdict != [("ok",)]:  # damage quick_check reports as rows rather than raises
        _, what, todo = _FAULTS[0]
        raise StoreError(_line(uri, what, "database disk image is malformed", todo))
