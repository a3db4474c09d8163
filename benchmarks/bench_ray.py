"""What a job costs on the Ray launcher next to `local_parallel`, beyond its training: a
sweep of 32 one-epoch jobs of a tiny network on 200 moons (training is milliseconds), its
wall time divided by 32, both launchers in the same run.

- `local_parallel`: the joblib launcher, 2 worker processes that live for the whole sweep
  (each imports Hydra, MLflow and matplotlib once).
- `ray`: a local Ray head started here (`ray start --head` on 127.0.0.1, 2 CPUs), jobs
  joining it by address, one task per job with `max_calls: 1`, so every job is a fresh
  worker process (Python start-up and imports each time), 2 at a time.

Both log into the same store: the MLflow server on PostgreSQL of `.ci/stores-up` when it
answers (what jobs on a cluster share), else a SQLite file. Launchers are interleaved over
`--repeat` rounds and the minimum is reported (the machine is shared; the load average is
printed with each figure).

    python benchmarks/bench_ray.py [--runs 32] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

SERVER = "http://127.0.0.1:5055"  # .ci/stores-up
JOB = ["experiment=quick_moons", "dataset.n_samples=200", "trainer.epochs=1",
       "logger.plots=false", "logger.log_model=false"]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def server_up() -> bool:
    try:
        with urllib.request.urlopen(f"{SERVER}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def start_ray_head(scratch: Path) -> tuple[str, subprocess.Popen]:
    """A Ray head in a process group of its own (stopped by signalling that group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="bench-ray-", dir="/tmp")  # short: unix sockets
    ray = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={port}",
         "--node-ip-address=127.0.0.1", "--num-cpus=2", f"--temp-dir={temp_dir}",
         "--include-dashboard=false", "--disable-usage-stats"],
        stdout=(scratch / "ray-head.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"127.0.0.1:{port}", head
        except OSError:
            if head.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the Ray head did not start: "
                                 + (scratch / "ray-head.log").read_text()[-2000:]) from None
            time.sleep(0.5)


def sweep_once(launcher: list[str], runs: int, work: Path, store: str) -> float:
    """Wall seconds of one sweep of `runs` jobs, checked to have logged every job."""
    experiment = f"bench-ray-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "mlplab", "train", "-m", *launcher, *JOB,
               f"seed=range(0,{runs})", f"experiment_name={experiment}",
               f"logger.tracking_uri={store}", f"hydra.sweep.dir={work / 'sweep'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # it only tries the network
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                          timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{launcher[0]} sweep failed:\n{done.stderr[-3000:]}")
    from mlflow import MlflowClient

    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    finished = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'",
                                  max_results=1000)
    if len(finished) != runs + 1:  # the children and their parent
        raise SystemExit(f"{experiment}: {len(finished)} finished runs, expected {runs + 1}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, float] = {}
    loads: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as scratch_dir:
        scratch = Path(scratch_dir)
        store = SERVER if server_up() else f"sqlite:///{scratch / 'mlflow.db'}"
        address, head = start_ray_head(scratch)
        launchers = {"local_parallel": ["hydra/launcher=local_parallel"],
                     "ray": ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"]}
        try:
            for repeat in range(args.repeat):
                for name, overrides in launchers.items():
                    work = scratch / f"{name}-{repeat}"
                    work.mkdir()
                    wall = sweep_once(overrides, args.runs, work, store)
                    print(f"  round {repeat + 1} {name:15s} {wall:6.1f} s "
                          f"({wall / args.runs:.2f} s a job; load {load()})", flush=True)
                    if wall < best.get(name, float("inf")):
                        best[name], loads[name] = wall, load()
        finally:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=60)
    print(f"\nper-job overhead, {args.runs}-job sweeps into {store.split('///')[0]} "
          f"(minimum of {args.repeat}):")
    for name, wall in best.items():
        ratio = wall / best["local_parallel"]
        print(f"  {name:15s} {wall / args.runs:.2f} s a job (sweep {wall:.1f} s, "
              f"{ratio:.1f}x local_parallel; load {loads[name]})")


if __name__ == "__main__":
    main()
