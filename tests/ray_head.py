"""A real local Ray head for the tests: `ray start --head` on 127.0.0.1, stopped after.

The head runs in the foreground (`--block`) in a session of its own, so that stopping it
means signalling that one process group, the head's processes and the workers it
started, and nothing else on the machine (`ray stop` would end every Ray on it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli() -> str | None:
    script = Path(sys.executable).with_name("ray")
    return str(script) if script.exists() else shutil.which("ray")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_head(num_cpus: int = 2, timeout: float = 120):
    """Start a head; return (address, process, temp dir). Skips where Ray cannot start."""
    cli = ray_cli()
    if cli is None:
        pytest.skip("Ray is not installed (optional extra: pip install -e '.[ray]')")
    port = free_port()
    # A short path: Ray's unix sockets live under it, and their paths are limited in length.
    temp_dir = tempfile.mkdtemp(prefix="mlplab-ray-", dir="/tmp")
    log = open(Path(temp_dir) / "head.log", "w")  # noqa: SIM115 -- closed in stop_head
    process = subprocess.Popen(
        [cli, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}", "--include-dashboard=false",
         "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    process.log = log
    deadline = time.monotonic() + timeout
    while not _reachable(port):
        if process.poll() is not None or time.monotonic() > deadline:
            head_log = (Path(temp_dir) / "head.log").read_text()[-2000:]
            stop_head(process, temp_dir)
            raise AssertionError(f"the Ray head did not start:\n{head_log}")
        time.sleep(0.5)
    return f"127.0.0.1:{port}", process, temp_dir


def stop_head(process, temp_dir: str) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    try:  # workers the head started and that outlived it: same process group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.log.close()
    shutil.rmtree(temp_dir, ignore_errors=True)


def worker_pids(sweep_dir: Path, job: int) -> list[int]:
    """The pids of the Ray workers that ran (or are running) job `job`, in order."""
    path = sweep_dir / ".ray" / f"{job}.attempts"
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line.strip()]
