"""`mlplab ui`: starts the MLflow UI on 127.0.0.1, prints the runs URL, stops cleanly."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
import urllib.request

from cli_helpers import client, mlplab_command, store_uri


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_ui_serves_the_store_and_prints_the_runs_table_url(store):
    experiment_id = client(store).create_experiment("study")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ui = subprocess.Popen([*mlplab_command(), "ui", "--port", str(port), "--experiment", "study",
                           "--tracking-uri", store_uri(store)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, cwd=store, env=env)
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(ui.stdout, printed), daemon=True).start()
    try:
        url = None
        while url is None:
            line = printed.get(timeout=240)
            url = line if line.startswith("http://") else None
        assert url == (f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs"
                       "?workflowType=machine_learning")
        with urllib.request.urlopen(url, timeout=30) as reply:
            assert reply.status == 200
            assert b"<html" in reply.read(4096).lower()
    finally:
        ui.send_signal(signal.SIGTERM)
        status = ui.wait(timeout=60)
    assert status == 0
    assert not _answers(port)  # the server went with it
