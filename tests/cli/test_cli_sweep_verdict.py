"""A grid sweep on the console: one live line while it runs on a terminal (none otherwise),
then its verdict: the parent run, the best child, the top runs and the UI link."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess

from cli_helpers import FAST, all_runs, isolated, mlplab_command

from mlplab.multirun.progress import read_states, summary_line, write_state

GRID = ["optimizer.lr=0.01,0.05,0.2"]


def run_on_a_terminal(store, *args, timeout=300):
    """`mlplab` with stderr on a pseudo-terminal (stdout a pipe); (status, stdout, stderr)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([*mlplab_command(), *args], stdout=subprocess.PIPE,
                            stderr=follower, cwd=store, env=env)
    os.close(follower)
    terminal = b""
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            raise TimeoutError(terminal.decode(errors="replace")[-2000:])
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    out = proc.stdout.read().decode()
    os.close(leader)
    return proc.wait(timeout=60), out, terminal.decode(errors="replace")


def test_a_sweep_shows_a_live_line_on_a_terminal_then_its_verdict(store):
    status, out, terminal = run_on_a_terminal(store, "train", "-m", *FAST, *GRID,
                                              *isolated(store))
    assert status == 0, terminal[-3000:]
    drawn = re.findall(r"\r\x1b\[K(sweep: [^\r]*)", terminal)
    assert drawn and all(re.match(r"sweep: [0-3]/3( ·|$)", line) for line in drawn), drawn
    assert any(" · best test_loss " in line for line in drawn)
    assert terminal.endswith("\r\x1b[K")  # the line is cleared before the verdict
    runs = all_runs(store)
    [parent] = [r for r in runs if r.data.tags.get("mlplab.role") == "sweep"]
    children = sorted((r for r in runs if r is not parent),
                      key=lambda r: r.data.metrics["test_loss"])
    lines = out.splitlines()
    assert f"sweep {parent.info.run_name} FINISHED: 3 runs (3 completed)" in lines
    assert f"parent run {parent.info.run_id}" in lines
    assert f"best       {children[0].info.run_name} ({children[0].info.run_id})" in lines
    top = lines.index("top 3 by test_loss (lowest first):")
    assert [line.split()[2] for line in lines[top + 1:top + 4]] == [
        c.info.run_id for c in children]
    assert lines[-1].strip().endswith(f"viewStateShareKey=sweep-{parent.info.run_id[:12]}")


def test_without_a_terminal_the_sweep_prints_no_progress(store):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([*mlplab_command(), "train", "-m", *FAST, "optimizer.lr=0.01,0.05",
                           *isolated(store)], capture_output=True, text=True, cwd=store,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep: " not in proc.stderr and "\x1b[K" not in proc.stderr
    assert "parent run " in proc.stdout  # the verdict is printed all the same


def test_the_live_line_counts_states_and_names_the_best_so_far(tmp_path):
    for num, (state, value, name) in enumerate([
            ("completed", 0.5, "a"), ("completed", 0.25, "b"), ("pruned", 0.1, "c"),
            ("failed", None, "d"), ("running", None, "e")]):
        write_state(tmp_path, num, state, value, name)
    states = read_states(tmp_path)
    assert summary_line(states, "test_loss", "min", total=8) == (
        "sweep: 4/8 · 1 running · 1 failed · 1 pruned · best test_loss 0.25 (b)")
    assert summary_line(states, "test_loss", "max").endswith("best test_loss 0.5 (a)")
