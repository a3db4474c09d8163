"""Sweep throughput: what a grid of small runs costs against the arithmetic of its trainings.

For grids of 64 and 256 quick_moons runs (8 learning rates x 8 or 32 seeds), in one run:

- sweep: `mlplab train -m hydra/launcher=local_parallel experiment=quick_moons ...` with
  MLflow on and the default artifacts, into a fresh SQLite store;
- arithmetic: the same trainings through the engine's API (config composed once, then
  dataset, model, optimizer and trainer built per run, no logging), one process per core;
- loop: a hand-written MLflow loop in one process, as a user would write it: a parent run,
  and per training a child run with its params, its metric history and its weights.

Each is timed from outside (wall seconds, and CPU seconds of all its processes, imports
included). From the two grid sizes: the fixed start-up (the intercept) and the marginal
cost of one more run (the slope between 64 and 256 runs), for wall and CPU; then the
marginal harness CPU per run above the arithmetic, and the ratio sweep wall /
(arithmetic CPU / cores), the target being <= 3 at 256 runs.
Also an 8-run grid with the basic and the local_parallel launcher (the parallel one must
not be slower from 8 jobs up).

`--baseline DIR` also times the sweeps with the code of another checkout (e.g. the commit
before a change), interleaved with this one's, so that both see the same load.

    python benchmarks/bench_sweep_throughput.py [--sizes 64 256] [--repeat 1]
                                                [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEARNING_RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def grid(runs: int) -> list[tuple[float, int]]:
    seeds = max(1, runs // len(LEARNING_RATES))
    return [(lr, seed) for lr in LEARNING_RATES for seed in range(seeds)][:runs]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (Linux), so that the CPU
    of processes that outlive their parent (a pool's forkserver and the workers forked
    from it) is counted in RUSAGE_CHILDREN once they are reaped here."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap_orphans() -> None:
    """Wait for every process left to this one (see `_adopt_orphans`)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def timed(commands: list[list[str]], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """(wall, CPU of every process it started, directly or not) of running `commands` at
    once, each to completion."""
    cpu, started = _children_cpu(), time.perf_counter()
    running = [subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for c in commands]
    for process, command in zip(running, commands, strict=True):
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"failed ({' '.join(command)}):\n{err[-3000:]}")
    wall = time.perf_counter() - started
    _reap_orphans()
    return wall, _children_cpu() - cpu


def make_template_store(directory: Path) -> Path:
    from mlplab.tracking import get_client

    path = directory / "template.db"
    get_client(f"sqlite:///{path}")
    return path


def fresh_store(template: Path, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


# ------------------------------------------------------------------------ the sweep
def sweep(runs: int, launcher: str, template: Path, work: Path, checkout: Path = ROOT):
    uri = fresh_store(template, work)
    seeds = max(1, runs // len(LEARNING_RATES))
    lrs = LEARNING_RATES[:runs] if runs < len(LEARNING_RATES) else LEARNING_RATES
    command = [sys.executable, "-m", "mlplab", "train", "-m", "experiment=quick_moons",
               "optimizer.lr=" + ",".join(map(str, lrs)), f"seed=range({seeds})",
               f"hydra/launcher={launcher}", f"logger.tracking_uri={uri}",
               f"hydra.sweep.dir={work / 'sweep'}"]
    env = dict(os.environ)
    if checkout != ROOT:  # its src/ ahead of the editable install's
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout / "src"),
                                                          env.get("PYTHONPATH")]))
    wall, cpu = timed([command], checkout, env)
    check_sweep(uri, len(lrs) * seeds)
    return wall, cpu


def check_sweep(uri: str, runs: int) -> None:
    from mlplab.tracking import get_client

    client = get_client(uri)
    experiment = client.get_experiment_by_name("quick_moons")
    found = client.search_runs([experiment.experiment_id], max_results=5000)
    finished = [r for r in found if r.info.status == "FINISHED"
                and "mlflow.parentRunId" in r.data.tags]
    if len(finished) != runs:
        raise SystemExit(f"expected {runs} finished children, found {len(finished)}")


# ------------------------------------------------------- the workers (own processes)
def _quick_moons():
    from mlplab.config.compose import compose_job

    return compose_job("experiment=quick_moons")


def _train(cfg, lr: float, seed: int, callbacks=()):
    import numpy as np

    from mlplab.job.build import build_model, build_optimizer, load_data, make_trainer

    cfg.optimizer.lr, cfg.seed = lr, seed
    np.random.seed(seed)  # noqa: NPY002 -- as a job does: data, then weights
    dataset = load_data(cfg)
    model = build_model(cfg, dataset)
    trainer = make_trainer(cfg, model, build_optimizer(cfg, model), list(callbacks))
    trainer.fit(dataset)
    return model


def arithmetic_worker(points: list[tuple[float, int]]) -> None:
    """The trainings alone, through the engine's API."""
    from mlplab.nn.threads import set_blas_threads

    set_blas_threads(1)
    cfg = _quick_moons()
    for lr, seed in points:
        _train(cfg, lr, seed)


class _History:
    """Collects the evaluations (a user's callback; the trainer calls it at its cadence)."""

    def __init__(self):
        self.points = []

    def on_epoch_end(self, epoch, metrics):
        self.points.extend((key, float(value), epoch) for key, value in metrics.items())


def loop_worker(points: list[tuple[float, int]], uri: str) -> None:
    """What a user writes by hand: one child run per training, params, metrics, weights."""
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from omegaconf import OmegaConf

    from mlplab.nn.threads import set_blas_threads
    from mlplab.tracking.params import flatten_params

    set_blas_threads(1)
    cfg = _quick_moons()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quick_moons")
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment("quick_moons"))
    parent = client.create_run(experiment_id, run_name="hand-written loop").info.run_id
    with tempfile.TemporaryDirectory() as scratch:
        for lr, seed in points:
            history = _History()
            run = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent},
                                    run_name=f"lr={lr},seed={seed}").info.run_id
            params = flatten_params(OmegaConf.to_container(cfg, resolve=True))
            client.log_batch(run, params=[Param(k, v[:6000]) for k, v in params.items()])
            model = _train(cfg, lr, seed, [history])
            now = int(time.time() * 1000)
            client.log_batch(run, metrics=[Metric(k, v, now, step)
                                           for k, v, step in history.points])
            weights = Path(scratch) / "final.npz"
            np.savez(weights, **model.state_dict())
            client.log_artifact(run, str(weights), "weights")
            client.set_terminated(run)
    client.set_terminated(parent)


def arithmetic(runs: int) -> tuple[float, float]:
    points, n = grid(runs), cores()
    shares = [points[i::n] for i in range(n)]
    commands = [[sys.executable, __file__, "--worker", "arithmetic", json.dumps(share)]
                for share in shares if share]
    return timed(commands, ROOT)


def loop(runs: int, template: Path, work: Path) -> tuple[float, float]:
    uri = fresh_store(template, work)
    command = [sys.executable, __file__, "--worker", "loop", json.dumps(grid(runs)), uri]
    return timed([command], ROOT)


# ---------------------------------------------------------------------- the report
def fit_line(sizes, values) -> tuple[float, float]:
    """(intercept, slope) of the straight line through the first and last size."""
    (a, ya), (b, yb) = (sizes[0], values[0]), (sizes[-1], values[-1])
    slope = (yb - ya) / (b - a)
    return ya - slope * a, slope


def report(sizes, best, n_cores: int) -> None:
    print(f"\n{'what':24s}" + "".join(f"{f'{n} runs wall/CPU s':>22s}" for n in sizes)
          + f"{'start-up wall/CPU':>20s}{'per run wall/CPU ms':>22s}")
    lines = {}
    for what in dict.fromkeys(k[0] for k in best):
        walls = [best[(what, n)][0] for n in sizes]
        cpus = [best[(what, n)][1] for n in sizes]
        (w0, ws), (c0, cs) = fit_line(sizes, walls), fit_line(sizes, cpus)
        lines[what] = (walls, cpus, ws, cs)
        cells = "".join(f"{w:11.2f} /{c:8.2f}" for w, c in zip(walls, cpus, strict=True))
        print(f"{what:24s}{cells}{w0:10.2f} /{c0:7.2f}{1000 * ws:12.1f} /{1000 * cs:7.1f}")
    arith = lines["arithmetic"]
    for what, (walls, _cpus, _ws, cs) in lines.items():
        if what == "arithmetic":
            continue
        ratios = ", ".join(f"{n}: {w / (a / n_cores):.2f}x" for n, w, a
                           in zip(sizes, walls, arith[1], strict=True))
        print(f"  {what}: marginal CPU above the arithmetic {1000 * (cs - arith[3]):.1f} ms "
              f"per run; wall / (arithmetic CPU / {n_cores} cores): {ratios}")


def _label(name: str) -> str:
    """A directory name for the sweeps of one checkout."""
    return "baseline" if "baseline" in name else "this"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", metavar="DIR",
                        help="a checkout whose code the sweeps are also timed with")
    parser.add_argument("--skip-launchers", action="store_true",
                        help="leave out the 8-run basic / local_parallel comparison")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, points, *rest = args.worker
        points = [tuple(p) for p in json.loads(points)]
        if kind == "arithmetic":
            arithmetic_worker(points)
        else:
            loop_worker(points, *rest)
        return
    _adopt_orphans()
    checkouts = {"sweep": ROOT}
    if args.baseline:
        checkouts["sweep (baseline)"] = Path(args.baseline).resolve()
    print(f"{cores()} cores; load {load()}")
    best: dict = {}

    def keep(key, got):
        old = best.get(key, got)
        best[key] = (min(old[0], got[0]), min(old[1], got[1]))

    with tempfile.TemporaryDirectory(prefix="mlplab-throughput-") as tmp:
        scratch = Path(tmp)
        template = make_template_store(scratch)
        for repeat in range(args.repeat):
            for n in args.sizes:
                keep(("arithmetic", n), arithmetic(n))
                keep(("hand-written loop", n), loop(n, template, scratch / f"loop-{n}-{repeat}"))
                for name, checkout in checkouts.items():
                    keep((name, n), sweep(n, "local_parallel", template,
                                          scratch / f"{_label(name)}-{n}-{repeat}", checkout))
                print(f"  done {n} runs (repeat {repeat + 1}), load {load()}", flush=True)
        report(args.sizes, best, cores())
        if not args.skip_launchers:
            print("\n8-run grid, wall / CPU s (parallel must not be slower than basic):")
            for name, checkout in checkouts.items():
                times = {launcher: sweep(8, launcher, template,
                                         scratch / f"l8-{launcher}-{_label(name)}", checkout)
                         for launcher in ("basic", "local_parallel")}
                cells = "  ".join(f"{k} {w:.2f} / {c:.2f}" for k, (w, c) in times.items())
                print(f"  {name:18s} {cells}")
    print(f"(load afterwards {load()})")


if __name__ == "__main__":
    main()
