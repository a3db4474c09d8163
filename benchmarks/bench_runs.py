"""`mlplab runs` against MLflow's own `MlflowClient.search_runs` over the same store.

The store holds 2000 finished runs in one experiment, each with 60 params and 4 metrics of
20 points (steps 1-20), as a long study leaves it. Both sides are fresh processes, so the
import of MLflow (and of mlplab) is part of the time:

- peer: `MlflowClient(uri).search_runs` paged through every run (what any script that
  reads the runs must do at least);
- mlplab: `mlplab runs --tracking-uri URI --format csv`, and with `--sort test_loss
  --limit 5` (sorting all 2000 before the limit), output to /dev/null.

Each figure is the minimum over --repeat runs, the variants interleaved (the machine is
shared), of the wall time and of the process's CPU time (the steadier figure on a busy
machine), each with its ratio to the peer's. Target: at most 1.2x.

    python benchmarks/bench_runs.py [--repeat 5] [--store PATH.db]

The store is built once (about a minute) at --store, default outputs/benchmarks/runs2000.db
under the checkout, and reused while it has the expected shape.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS, PARAMS, METRICS, STEPS = 2000, 60, ("train_loss", "test_loss", "train_accuracy",
                                           "test_accuracy"), 20
EXPERIMENT = "bench_runs"

PEER = """
import sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
ids = [e.experiment_id for e in client.search_experiments()]
runs, token = [], None
while True:
    page = client.search_runs(ids, max_results=1000, page_token=token)
    runs.extend(page)
    token = page.token
    if not token:
        break
print(len(runs))
"""


def build_store(path: Path) -> str:
    """The benchmark's store at `path` (built unless it already holds RUNS runs)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    uri = f"sqlite:///{path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        count = len(client.search_runs([experiment.experiment_id], max_results=RUNS + 1))
        if count == RUNS:
            return uri
        raise SystemExit(f"{path} holds {count} runs, not {RUNS}: remove it or pass --store")
    started = time.perf_counter()
    experiment_id = client.create_experiment(EXPERIMENT)
    for i in range(RUNS):
        run_id = client.create_run(experiment_id, run_name=f"run-{i}").info.run_id
        params = [Param(f"group{p % 6}.key{p}", str((i * 7 + p) % 13)) for p in range(PARAMS)]
        stamp = int(time.time() * 1000)
        metrics = [Metric(key, 1.0 / (step + i % 17 + k), stamp + step, step)
                   for k, key in enumerate(METRICS, start=1) for step in range(1, STEPS + 1)]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id, "FINISHED")
    print(f"built {path}: {RUNS} runs in {time.perf_counter() - started:.0f} s")
    return uri


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `command`."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - started, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", type=Path,
                        default=ROOT / "outputs" / "benchmarks" / "runs2000.db")
    args = parser.parse_args()
    uri = build_store(args.store)
    variants = {
        "MlflowClient.search_runs": [sys.executable, "-c", PEER, uri],
        "mlplab runs --format csv": [sys.executable, "-m", "mlplab", "runs",
                                     "--tracking-uri", uri, "--format", "csv"],
        "mlplab runs --sort test_loss --limit 5": [
            sys.executable, "-m", "mlplab", "runs", "--tracking-uri", uri, "--sort",
            "test_loss", "--limit", "5"],
    }
    best = {name: (float("inf"), float("inf")) for name in variants}
    for _ in range(args.repeat):
        for name, command in variants.items():
            wall, cpu = timed(command)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    peer_wall, peer_cpu = best["MlflowClient.search_runs"]
    print(f"{RUNS} runs, {PARAMS} params, {len(METRICS)} metrics x {STEPS} points; "
          f"min of {args.repeat}, load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, (wall, cpu) in best.items():
        print(f"  {name:<40} wall {wall:6.2f} s {wall / peer_wall:4.2f}x   "
              f"CPU {cpu:6.2f} s {cpu / peer_cpu:4.2f}x")


if __name__ == "__main__":
    main()
