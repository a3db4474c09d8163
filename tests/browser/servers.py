"""Run a real server process for a test, wait until it answers, and stop it.

The server runs in its own session (process group) so that stopping it also stops the
workers it forks (uvicorn/gunicorn); killing only the parent would leave them holding the
port. Output goes to a log file whose tail is shown when the server dies early.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_env(extra=None) -> dict[str, str]:
    """os.environ with this interpreter's bin directory first on PATH: MLflow execs
    `uvicorn`/`gunicorn` by name, and they live next to the interpreter."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, **(extra or {})}


@contextlib.contextmanager
def background_process(command, *, log_path, env=None):
    """Start `command` in a new session with output to `log_path`; stop it on exit."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=venv_env(env), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            stop_process_group(process)


@contextlib.contextmanager
def mlflow_process(args, *, ready_path: str, port: int, log_path, env=None, timeout=180.0):
    """`python -m mlflow <args>`; yields its base URL once GET `ready_path` answers 200."""
    with background_process([sys.executable, "-m", "mlflow", *args], log_path=log_path,
                            env=env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_url(base + ready_path, process, timeout, log_path)
        yield base


def _log_tail(log_path) -> str:
    return Path(log_path).read_text(errors="replace")[-3000:]


def wait_for_url(url: str, process, timeout: float, log_path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} "
                               f"answered:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s:\n{_log_tail(log_path)}")


def wait_for_output(pattern: str, process, timeout: float, log_path) -> re.Match:
    """The first match of `pattern` in the process's log, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, Path(log_path).read_text(errors="replace"))
        if found:
            return found
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before printing "
                               f"{pattern!r}:\n{_log_tail(log_path)}")
        time.sleep(0.25)
    raise TimeoutError(f"no {pattern!r} within {timeout:.0f} s:\n{_log_tail(log_path)}")


def stop_process_group(process, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    # Whatever of the group survived (the parent, or workers orphaned by its exit).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=grace)


def post_json(url: str, payload: dict, timeout=30.0) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())
