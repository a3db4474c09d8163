"""`mlplab ui`: the MLflow UI on the project's store, bound to 127.0.0.1.

It starts `mlflow ui --backend-store-uri <store>`, writes the comparison view of an
experiment (`--experiment`, else the one with the latest run; see
`mlplab.tracking.ui_view`) while the server starts, waits until the server answers, then
prints the runs-table URL that opens on that view: metric and varying-param columns, runs
best first, each sweep's children grouped under its name. The URL carries
`workflowType=machine_learning`: MLflow 3's UI otherwise opens on its GenAI view, which has
nothing to show for these runs. An experiment without runs opens on MLflow's default view.
Ctrl-C (or SIGTERM) stops the server.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from mlplab.cli._common import raise_usage_error
from mlplab.errors import ConfigError, choices
from mlplab.tracking.ui_view import DEFAULT_UI_PORT, latest_runs, publish_experiment_view, view_url

STARTUP_SECONDS = 120


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplab ui", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_UI_PORT)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--experiment", metavar="NAME", help="experiment whose runs to open")
    parser.add_argument("--tracking-uri", default=None, help="the MLflow store to serve")
    return parser


def _experiment_id(client, name: str | None) -> str:
    if name:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            known = [e.name for e in client.search_experiments()]
            raise ConfigError(f"--experiment: no experiment {name!r} in the store; valid "
                              f"choices: {choices(known) or '(none yet)'}")
        return experiment.experiment_id
    experiments = client.search_experiments()
    latest = client.search_runs([e.experiment_id for e in experiments], max_results=1,
                                order_by=["attributes.start_time DESC"]) if experiments else []
    return latest[0].info.experiment_id if latest else "0"


def _publish_view(client, experiment_id: str) -> str | None:
    """The experiment's comparison view, rewritten; None (MLflow's default view) when it
    has no runs or the view cannot be written (the UI opens all the same)."""
    try:
        runs = latest_runs(client, experiment_id)
        return publish_experiment_view(client, experiment_id, runs) if runs else None
    except Exception as error:  # noqa: BLE001 -- a view is a convenience, never a stop
        print(f"mlplab ui: the comparison view could not be written ({error}); the UI opens "
              "on MLflow's default view", file=sys.stderr)
        return None


def _server_command(store: str, host: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
               "--host", host, "--port", str(port), "--workers", "1"]
    if store.startswith("sqlite:///"):  # artifacts of UI-made experiments next to the DB
        database = Path(store.removeprefix("sqlite:///"))
        command += ["--artifacts-destination", str(database.parent / "mlartifacts")]
    return command


def _wait_until_up(server: subprocess.Popen, host: str, port: int) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ConfigError(f"--port: the MLflow UI exited at start (status "
                              f"{server.returncode}); is port {port} already in use?")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise ConfigError(f"--port: the MLflow UI did not answer on {host}:{port} within "
                      f"{STARTUP_SECONDS} s")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def ui_main(argv: list[str]) -> int:
    from mlplab.tracking.store import get_client, resolve_tracking_uri

    parser = _parser()
    parser.error = raise_usage_error
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:  # else the server exits at once, as on a busy port
        raise ConfigError(f"--port: invalid value {args.port}; must be a TCP port, an "
                          "integer in [1, 65535]")
    store = resolve_tracking_uri(args.tracking_uri)
    if urlparse(store).scheme in ("http", "https"):
        print(f"the store is an MLflow server already: open {store}")
        return 0
    client = get_client(store)  # creates the database when there is none yet
    experiment_id = _experiment_id(client, args.experiment)
    # A session of its own: the server's workers are stopped with it, as one group.
    server = subprocess.Popen(_server_command(store, args.host, args.port),
                              start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    try:
        key = _publish_view(client, experiment_id)  # while the server starts
        _wait_until_up(server, shown_host, args.port)
        url = view_url(f"http://{shown_host}:{args.port}", experiment_id, key)
        print(f"MLflow UI for {store}:\n{url}", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server)
        signal.signal(signal.SIGTERM, previous)
    return 0
