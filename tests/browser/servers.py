"""Start a real MLflow server process for a test, wait until it answers, and stop it.

The server runs in its own process group so that stopping it also stops the workers it
forks (uvicorn/gunicorn); killing only the parent would leave them holding the port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_process(args, *, ready_path: str, port: int, env=None, timeout=120.0, log_path=None):
    """Run `python -m mlflow <args>`; yield its base URL once GET `ready_path` answers 200."""
    # MLflow execs `uvicorn`/`gunicorn` by name: they live next to this interpreter.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    environment = {**os.environ, "PATH": path, **(env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "mlflow", *args], env=environment,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + ready_path, process, timeout, log_path)
        yield base
    finally:
        stop_process_group(process)
        if log_path:
            log.close()


def wait_until_up(url: str, process, timeout: float, log_path=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = open(log_path).read()[-2000:] if log_path else ""
            raise RuntimeError(f"server exited with {process.returncode} before {url}\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop_process_group(process, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after `grace` s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    # Whatever of the group survived (the parent, or workers orphaned by its exit).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=grace)


def post_json(url: str, payload: dict, timeout=30.0) -> dict:
    import json

    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())
