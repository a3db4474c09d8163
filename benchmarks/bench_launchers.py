"""What a job costs on each launcher (local_parallel, submitit_slurm, ray), beyond its
training: a sweep of 32 one-epoch jobs of a tiny network on 200 moons (training is
milliseconds), its wall time divided by 32.

Every launcher logs into the same store, the MLflow server on PostgreSQL that
`.ci/stores-up` starts (what jobs on a cluster share), so the figures differ by the
launcher alone:
- `local_parallel`: the joblib launcher, 2 worker processes that live for the whole sweep
  (each imports Hydra, MLflow and matplotlib once).
- `submitit_slurm`: one SLURM array on the one-node cluster of `.ci/slurm-up`, 2 CPUs, one
  per job (`cpus_per_task=1`), so 2 jobs at a time; every job is a fresh process (sbatch,
  srun, Python start-up and imports), and the launching process learns a job's end from
  `sacct` (at most every 2 s).
- `ray`: a local Ray head started here (`ray start --head` on 127.0.0.1, 2 CPUs), jobs
  joining it by address, one task per job with `max_calls: 1`, so every job is a fresh
  worker process (Python start-up and imports each time), 2 at a time.
Launchers are interleaved over `--repeat` rounds and the minimum is reported (the machine
is shared; the load average is printed with each figure). A launcher whose service is not
up (`.ci/slurm-up`; Ray not installed: the `ray` extra) is reported as skipped; the server
(`.ci/stores-up`) is required.

    python benchmarks/bench_launchers.py [--runs 32] [--repeat 2] [--launchers a,b]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = "http://127.0.0.1:5055"  # .ci/stores-up
JOB = ["experiment=quick_moons", "dataset.n_samples=200", "trainer.epochs=1",
       "logger.plots=false", "logger.log_model=false"]
# The overrides that choose each launcher (another launcher is one more entry).
LAUNCHERS = {
    "local_parallel": ["hydra/launcher=local_parallel"],
    "submitit_slurm": ["hydra/launcher=submitit_slurm", "hydra.launcher.cpus_per_task=1"],
    "ray": ["hydra/launcher=ray"],  # and the head's address, once it is up
}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def unavailable(launcher: str) -> str | None:
    """Why `launcher` cannot run here now, or None."""
    if launcher == "submitit_slurm":
        if shutil.which("sbatch") is None:
            return "no SLURM (run .ci/slurm-up)"
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            return "slurmctld is not up (run .ci/slurm-up)"
    if launcher == "ray" and not Path(sys.executable).with_name("ray").exists():
        return "Ray is not installed (pip install -e '.[ray]')"
    return None


def start_ray_head(scratch: Path) -> tuple[str, subprocess.Popen]:
    """A Ray head in a process group of its own (stopped by signalling that group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="bench-ray-", dir="/tmp")  # short: unix sockets
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
         f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
         f"--temp-dir={temp_dir}", "--include-dashboard=false", "--disable-usage-stats"],
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


def server_up() -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{SERVER}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def sweep_once(launcher: str, runs: int, work: Path) -> float:
    """Wall seconds of one sweep of `runs` jobs, checked to have logged every job."""
    experiment = f"bench-launchers-{launcher}-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "mlplab", "train", "-m", *LAUNCHERS[launcher], *JOB,
               f"seed=range(0,{runs})", f"experiment_name={experiment}",
               f"logger.tracking_uri={SERVER}", f"hydra.sweep.dir={work / 'sweep'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # MLflow's usage telemetry (on outside CI and tests) only tries the network; its
    # thread also edits os.environ while requests read it, a rare KeyError seen here.
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                          timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{launcher} sweep failed:\n{done.stderr[-3000:]}")
    check_sweep(experiment, runs)
    return wall


def check_sweep(experiment: str, runs: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(SERVER)
    found = client.get_experiment_by_name(experiment)
    finished = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'",
                                  max_results=1000)
    if len(finished) != runs + 1:  # the children and their parent
        raise SystemExit(f"{experiment}: {len(finished)} finished runs, expected {runs + 1}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--launchers", default=",".join(LAUNCHERS))
    args = parser.parse_args()
    if not server_up():
        raise SystemExit(f"no MLflow server at {SERVER}: run .ci/stores-up first")
    chosen = [name for name in args.launchers.split(",") if name]
    skipped = {name: why for name in chosen if (why := unavailable(name))}
    best: dict[str, float] = {}
    loads: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-launchers-") as scratch:
        head = None
        if "ray" in chosen and "ray" not in skipped:
            address, head = start_ray_head(Path(scratch))
            LAUNCHERS["ray"].append(f"hydra.launcher.ray.init.address={address}")
        try:
            for repeat in range(args.repeat):
                for launcher in chosen:
                    if launcher in skipped:
                        continue
                    work = Path(scratch) / f"{launcher}-{repeat}"
                    work.mkdir()
                    wall = sweep_once(launcher, args.runs, work)
                    print(f"  round {repeat + 1} {launcher:15s} {wall:6.1f} s "
                          f"({wall / args.runs:.2f} s a job; load {load()})", flush=True)
                    if wall < best.get(launcher, float("inf")):
                        best[launcher], loads[launcher] = wall, load()
        finally:
            if head is not None:
                os.killpg(head.pid, signal.SIGTERM)
                head.wait(timeout=60)
    print(f"\nper-job overhead, {args.runs}-job sweeps into the MLflow server on PostgreSQL "
          f"(minimum of {args.repeat}):")
    reference = best.get("local_parallel")
    for launcher in chosen:
        if launcher in skipped:
            print(f"  {launcher:15s} skipped: {skipped[launcher]}")
            continue
        ratio = f", {best[launcher] / reference:.1f}x local_parallel" if reference else ""
        print(f"  {launcher:15s} {best[launcher] / args.runs:.2f} s a job "
              f"(sweep {best[launcher]:.1f} s{ratio}; load {loads[launcher]})")


if __name__ == "__main__":
    main()
