"""Where runs are stored, and talking to that store safely from many processes at once.

Sweep jobs run in separate worker processes that all write one SQLite file. SQLite lets one
writer in at a time, so a busy store answers "database is locked"; every call made through
`RetryingClient` waits and tries again instead of losing the run. Creating the store's
tables is a migration that two processes must not run together, which is why the sweep
callback calls `get_client` + `ensure_experiment` once before any job starts, and
`get_client` holds a file lock while it opens a SQLite store.

A SQLite store that mlplab creates is put in write-ahead-log mode (`use_write_ahead_log`;
the mode stays with the file, which then has `-wal` and `-shm` files beside it; an existing
store keeps the mode it has, and `PRAGMA journal_mode=WAL` switches it). In SQLite's
default mode a reader blocks a writer's commit, and every MLflow write starts by reading
the run: the workers of a parallel sweep spent more time waiting for each other's locks
(SQLite's busy handler sleeps up to 100 ms a try) than writing. With the log, readers never
block the writer and a commit is one append: a 64-run quick_moons `local_parallel` sweep on
two workers took 32.7 and 25.6 s instead of 38.4 and 31.4 s (two pairs, each run back to
back, on a loaded machine). The log needs the shared memory of one machine, so a store on a
network filesystem, which SQLite's locks do not work on either way, should be an MLflow
server instead. Under the log, mlplab's connections commit with `PRAGMA synchronous=NORMAL`
(`_commit_without_fsync`): a commit is written to the log but not flushed to the disk, which
happens at each checkpoint instead. A run killed at any point keeps every commit it made (the
operating system has the log); only a power cut or a crash of the machine can lose the last
commits, never the store's consistency. A small run makes about twenty commits, and each
flush is a few milliseconds of a worker doing nothing.

Building an `MlflowClient` for a SQLite store is slow (SQLAlchemy models, schema check),
so clients are cached per process and tracking URI: a loky worker that runs many jobs pays
once. MLflow itself is imported lazily, so `logger=none` runs never import it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import random
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
from urllib.parse import unquote, urlparse

from mlplab.errors import ConfigError, choices
from mlplab.tracking.postgresql import check_postgresql
from mlplab.tracking.stale import close_stale_runs
from mlplab.tracking.store_errors import translated

log = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# The MLflow 3 UI opens experiments without this tag in its GenAI view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

# Fragments of errors that mean "another process holds the store right now; try again".
_TRANSIENT = ("database is locked", "database table is locked", "database schema has changed")


def project_root() -> Path:
    """The checkout holding pyproject.toml and src/mlplab, else the working directory."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "mlplab").is_dir():
            return parent
    return Path.cwd()


def outputs_dir() -> Path:
    return project_root() / "outputs"


def default_tracking_uri() -> str:
    return "sqlite:///" + str(outputs_dir() / "mlflow.db")


def resolve_tracking_uri(value: str | None = None) -> str:
    """An explicit value, else `$MLFLOW_TRACKING_URI`, else the project's SQLite file.

    A bare path ending in `.db` means a SQLite file (relative paths against the working
    directory); anything with a scheme is passed to MLflow untouched.
    """
    value = value or os.environ.get(TRACKING_URI_ENV) or None
    if value is None:
        return default_tracking_uri()
    value = str(value)
    if "://" not in value and value.endswith(".db"):
        return "sqlite:///" + str(Path(value).expanduser().resolve())
    return value


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):]
    return Path(path) if path and path != ":memory:" else None


# Stores MLflow 3 can log to (`postgresql+psycopg2://...` counts as postgresql). Not `file`:
# MLflow 3 refuses to create runs in a file store.
STORE_SCHEMES = ("databricks", "http", "https", "mssql", "mysql", "postgresql", "sqlite")
DATABRICKS_CREDENTIALS = ("DATABRICKS_HOST", "DATABRICKS_TOKEN")
SQLITE_HEADER = b"SQLite format 3\x00"
PING_SECONDS = 5.0


def check_store(value: str | None = None, key: str = "logger.tracking_uri") -> str:
    """The resolved tracking URI, or a one-line `ConfigError` if nothing could be logged there.

    Checked before any run starts: otherwise a mistyped scheme or an unusable path is a
    traceback after the data are loaded, and an unreachable server is found by MLflow's
    first request, which retries for minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7 with
    backoff); a server that wants credentials would answer a traceback. An answer that is
    not MLflow's JSON means another kind of server; a TLS certificate urllib cannot verify
    (MLflow may be configured to trust it) counts as reachable: the rest is MLflow's to
    report. File stores (MLflow 3 writes none), in-memory SQLite (the run would be lost)
    and Databricks without credentials are refused.
    """
    if not value and os.environ.get(TRACKING_URI_ENV):
        key = TRACKING_URI_ENV
    uri = resolve_tracking_uri(value)
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme == "file" or not scheme and uri != "databricks":
        raise ConfigError(f"{key}: {uri!r} is a file store, which MLflow 3 no longer writes; "
                          f"valid choices: a sqlite:///path.db store (or a path ending in .db), "
                          f"or a server URL ({choices(STORE_SCHEMES)})")
    if scheme == "sqlite" and _sqlite_path(uri) is None:
        raise ConfigError(f"{key}: {uri!r} is an in-memory SQLite store, lost when the run "
                          "ends; valid choices: sqlite:///path.db (a file), or logger=none")
    if scheme and scheme not in STORE_SCHEMES:
        raise ConfigError(f"{key}: unsupported scheme {scheme!r} in {uri!r}; valid choices: "
                          f"{choices(STORE_SCHEMES)} (or a path ending in .db)")
    db_path = _sqlite_path(uri)
    if db_path is not None:
        _check_sqlite_file(db_path, key)
    elif scheme in ("http", "https"):
        _ping_server(uri, key)
    elif scheme == "postgresql":
        check_postgresql(uri, key, PING_SECONDS)
    elif uri.split(":")[0] == "databricks":
        _check_databricks(uri, key)
    return uri


def _check_databricks(uri: str, key: str) -> None:
    """A Databricks store needs a workspace and a token, from the environment or a profile
    in ~/.databrickscfg (`databricks://PROFILE`); without them MLflow answers a traceback."""
    if all(os.environ.get(name) for name in DATABRICKS_CREDENTIALS):
        return
    config = Path(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg")).expanduser()
    if config.is_file():
        return  # the profile's contents are Databricks' to check
    raise ConfigError(f"{key}: {uri!r} needs Databricks credentials, and none are set; valid "
                      f"choices: set {' and '.join(DATABRICKS_CREDENTIALS)} (or write a "
                      "~/.databrickscfg profile), or a sqlite:///path.db store")


def _ping_server(uri: str, key: str) -> None:
    """One API request (the one MLflow makes first), with MLflow's credentials from the
    environment; refused connections, timeouts and 401/403 become one-line errors."""
    request = urllib.request.Request(
        uri.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default")
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {pair}")
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    try:
        with urllib.request.urlopen(request, timeout=PING_SECONDS) as answer:
            status, body = answer.status, answer.read(65536)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            given = "refused the credentials given" if user or os.environ.get(
                "MLFLOW_TRACKING_TOKEN") else "wants credentials"
            raise ConfigError(f"{key}: the MLflow server at {uri} {given} (HTTP {error.code}); "
                              "valid choices: set MLFLOW_TRACKING_USERNAME and "
                              "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)") from None
        status, body = error.code, error.read(65536)
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, ssl.SSLError):
            return
        raise ConfigError(f"{key}: cannot reach the MLflow server at {uri} ({reason}); "
                          "valid choices: a running server's URL, a sqlite:///path.db "
                          "store, or logger=none") from None
    _check_mlflow_answer(uri, key, status, body)


def _check_mlflow_answer(uri: str, key: str, status: int, body: bytes) -> None:
    """MLflow's REST API answers JSON (the experiment, or an `error_code`); anything else
    (a web page, another API) is not an MLflow server, whose first write would fail."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not ({"experiment", "error_code"} & answer.keys()):
        raise ConfigError(f"{key}: {uri} answers, but not as an MLflow server (HTTP {status} "
                          "to its API); valid choices: the URL of an MLflow tracking server "
                          "(mlflow server, mlplab ui), a sqlite:///path.db store, or "
                          "logger=none")


def _check_sqlite_file(path: Path, key: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{key}: cannot create the store's directory {path.parent} "
                          f"({error.strerror or error}); valid choices: a writable path") from None
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
        if header != SQLITE_HEADER:
            raise ConfigError(f"{key}: {path} is not an SQLite database; valid choices: an "
                              "MLflow SQLite store, or a path where a new one can be created")
    elif path.exists() and not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file; valid choices: a path ending in .db")
    # SQLite writes its journal beside the file; access() also sees a read-only mount.
    if not os.access(path.parent, os.W_OK) or path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{key}: {path} is read-only; valid choices: make "
                          "the file and its directory writable, or give another store")


def _is_transient(error: BaseException, fragments=_TRANSIENT) -> bool:
    text = str(error).lower()
    return any(fragment in text for fragment in fragments)


def retry(call, *args, attempts: int = 12, fragments=_TRANSIENT, **kwargs):
    """Run `call(*args, **kwargs)`, retrying with jittered exponential backoff on lock errors.

    Twelve attempts starting at 50 ms and capped at 2 s wait ~15 s in total: long enough
    for a burst of jobs finishing together, short enough to surface a real outage.
    """
    delay = 0.05
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as error:  # MLflow wraps SQLAlchemy errors in MlflowException
            if attempt == attempts - 1 or not _is_transient(error, fragments):
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


class RetryingClient:
    """An `MlflowClient` whose every method call is retried on "database is locked"."""

    def __init__(self, client, tracking_uri: str):
        self._client = client
        self.tracking_uri = tracking_uri

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        return functools.partial(retry, attribute)

    @property
    def raw(self):
        """The wrapped `MlflowClient`, for calls that must not be repeated."""
        return self._client


_clients: dict[tuple[int, str], RetryingClient] = {}


@contextlib.contextmanager
def _creation_lock(db_path: Path | None):
    """Hold an exclusive lock on `<db>.lock` while a client opens a SQLite store.

    Opening a store that is new or older than the installed MLflow runs Alembic
    migrations; two processes migrating one file at once leave it broken (half-copied
    `_alembic_tmp_*` tables), which no retry can mend. The lock makes the second process
    wait and then find the schema current. POSIX only; elsewhere the callers must create
    the store first (the sweep callback does).
    """
    if db_path is None or fcntl is None:
        yield
        return
    with open(db_path.with_name(db_path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def get_client(tracking_uri: str | None = None) -> RetryingClient:
    """A cached, retrying client for the resolved tracking URI (one per process and URI)."""
    uri = resolve_tracking_uri(tracking_uri)
    key = (os.getpid(), uri)  # a forked child must not reuse its parent's connections
    if key not in _clients:
        # Every command, not only `train`: an unreachable server must not cost minutes of
        # MLflow's retries before its first error (one request, once per process and URI).
        check_store(uri, key="tracking URI")
        # MLflow draws download progress bars on stderr, where an error must be one line.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient

        # MLflow logs each database error with its traceback before raising it; the error
        # still reaches mlplab, which reports it once (`store_errors`).
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

        db_path = _sqlite_path(uri)
        if db_path is not None:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            _commit_without_fsync()
            # Imported before the lock: the import is slow, and the workers of a parallel
            # sweep would otherwise spend it one after the other.
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        with _creation_lock(db_path), translated(uri):
            new = db_path is not None and not (db_path.is_file() and db_path.stat().st_size)
            client = retry(MlflowClient, tracking_uri=uri, fragments=_TRANSIENT)
            if new:
                use_write_ahead_log(db_path)
        _clients[key] = RetryingClient(client, uri)
        _close_stale_runs(_clients[key])
    return _clients[key]


def use_write_ahead_log(db_path: Path, timeout: float = 10) -> bool:
    """Put the SQLite store at `db_path` in write-ahead-log mode unless it is already;
    whether it is now. A store still busy after `timeout` seconds, or read-only, keeps its
    mode (asked again by the next process that opens it)."""
    import sqlite3

    try:
        connection = sqlite3.connect(str(db_path), timeout=timeout)
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error as error:
        log.debug("%s stays in its journal mode: %s", db_path, error)
        return False
    return mode.lower() == "wal"


@functools.cache
def _commit_without_fsync() -> None:
    """From now on, every SQLite connection this process opens through SQLAlchemy to a store
    in write-ahead-log mode commits with `synchronous=NORMAL` (see the module docstring); a
    store in another journal mode keeps SQLite's default (FULL), which it needs to stay
    consistent through a power cut."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(dbapi_connection, _record) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    cursor.execute("PRAGMA synchronous=NORMAL")
            finally:
                cursor.close()
        except sqlite3.Error as error:  # busy or read-only: this connection keeps FULL
            log.debug("synchronous stays FULL: %s", error)

    event.listen(Engine, "connect", on_connect)


def _close_stale_runs(client: RetryingClient) -> None:
    """Close the runs a dead process of this host left RUNNING (`mlplab.tracking.stale`),
    once per process and store: the first command to open a store after a fault tidies it."""
    try:
        with translated(client.tracking_uri):
            close_stale_runs(client)
    except Exception as error:  # a store that can be read but not written: leave them
        log.warning("could not close stale runs in %s: %s", client.tracking_uri,
                    str(error).splitlines()[0] if str(error) else type(error).__name__)


_experiment_ids: dict[tuple[str, str], str] = {}


def experiment_artifact_location(tracking_uri: str, name: str) -> str | None:
    """`mlartifacts/<name>` next to a SQLite store (for the default store that is
    `<project root>/outputs/mlartifacts/<name>`); for a PostgreSQL store written to
    directly, `<project root>/outputs/mlartifacts/<name>` (on a cluster, a shared
    filesystem every node sees; MLflow's own default would be `./mlruns` of whichever
    directory created the experiment); None lets MLflow or the server decide."""
    if urlparse(tracking_uri).scheme.split("+")[0] == "postgresql":
        return (outputs_dir() / "mlartifacts" / name).as_uri()
    db_path = _sqlite_path(tracking_uri)
    if db_path is None:
        return None
    return (db_path.expanduser().resolve().parent / "mlartifacts" / name).as_uri()


def ensure_experiment(client: RetryingClient, name: str) -> str:
    """The id of experiment `name`, creating (or restoring a deleted) one when needed.

    SQLite stores keep artifacts in `mlartifacts/<name>` beside the database file, i.e.
    `<project root>/outputs/mlartifacts/<name>` for the default store, PostgreSQL stores
    in `<project root>/outputs/mlartifacts/<name>`; a tracking server (or a file store)
    chooses its own artifact location.
    """
    key = (client.tracking_uri, name)
    if key in _experiment_ids:
        return _experiment_ids[key]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = experiment_artifact_location(client.tracking_uri, name)
        try:
            experiment_id = client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception as error:  # another process created it between our two calls
            if not _is_transient(error, ("already exists",)):
                raise
            experiment_id = client.get_experiment_by_name(name).experiment_id
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    _experiment_ids[key] = experiment_id
    return experiment_id


@functools.cache
def git_commit() -> str:
    """`git rev-parse HEAD` of the project checkout, or "unknown" outside a repository."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(),
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "unknown"


def local_artifact_dir(artifact_uri: str | None) -> Path | None:
    """The directory of a `file://` artifact location (a run's or a logged model's), else
    None: the store keeps those files elsewhere (a server, object storage)."""
    if not artifact_uri or not str(artifact_uri).startswith("file://"):
        return None
    parsed = urlparse(str(artifact_uri))
    return Path(unquote(parsed.path)) if parsed.netloc in ("", "localhost") else None


def copy_artifacts(upload, local_dir, artifact_path: str | None, artifact_uri: str | None):
    """The files under `local_dir` as artifacts under `artifact_path`: copied straight into
    a local artifact location, else sent by `upload(local_dir, artifact_path)` (the
    client's `log_artifacts` or `log_model_artifacts`).

    For a `file://` location MLflow's upload also only copies the files, but first asks
    the store where the run's artifacts live (a query per call, several per run); the
    location is known from when the run or the logged model was created.
    """
    root = local_artifact_dir(artifact_uri)
    if root is None:
        upload(str(local_dir), artifact_path)
        return
    shutil.copytree(local_dir, root / artifact_path if artifact_path else root,
                    dirs_exist_ok=True)
