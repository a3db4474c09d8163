"""What the harness (Hydra + trainer + MLflow) costs on top of the training itself.

(1) Per-run overhead: wall time of `mlplab train -m` sweeping 16 one-epoch runs of a tiny
    network on 200 moons, divided by 16, with the basic launcher (jobs one after the other
    in one process) and the joblib launcher (2 worker processes), MLflow on (with and
    without the plots and pyfunc model) and off. Target: <= 0.5 s per run with joblib.
    CPU seconds of all the sweep's processes are reported too: on a shared machine they
    are the steadier figure (wall ~ CPU / 2 on two free cores).
    The store exists before the sweep (creating a SQLite store is a one-off migration of
    several seconds, reported separately).
(2) Logging overhead: a 20,000-epoch full-batch run of the edenau network (2-4-4-3 ReLU,
    7000 samples, mse_half + the edenau_loss metric) with MLflow against no logger, at the
    default cadence (log_every=auto, i.e. every 20 epochs; target <= 5%) and with
    log_every=1 forced. `fit` wall and CPU time (metrics and final weights logged), and the
    whole run as the app makes it (opening the run, params, config, plots, pyfunc model).
    Also end to end through `mlplab train experiment=edenau_regression` with MLflow on/off.

Every figure is the minimum over --repeat runs, variants interleaved (the machine is
shared); the load average is printed because on a busy machine wall times stretch.
`--baseline DIR` also runs the sweeps with the code of another checkout (e.g. an export of
the commit before a change), interleaved with this one's, so both see the same load.

    python benchmarks/bench_harness.py [--part sweep|logging|cli|all] [--repeat 3]
                                       [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLPLAB = [sys.executable, "-m", "mlplab"]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def make_template_store(directory: Path) -> Path:
    """An empty, migrated SQLite store; returns its path and prints how long it took."""
    from mlplab.tracking import get_client

    path = directory / "template.db"
    started = time.perf_counter()
    get_client(f"sqlite:///{path}")
    print(f"creating an empty SQLite store (schema migration): "
          f"{time.perf_counter() - started:.2f} s")
    return path


def fresh_store(template: Path, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


# ------------------------------------------------------------------------- (1) sweeps
def sweep_once(launcher: str, logger: str, template: Path, work: Path, runs: int,
               checkout: Path = ROOT):
    """(wall seconds, CPU seconds of the sweep's processes) of one `mlplab train -m`, run
    with the code and configs of `checkout`."""
    work.mkdir(parents=True)
    uri = fresh_store(template, work)
    command = [*MLPLAB, "train", "-m", "experiment=quick_moons", "dataset.n_samples=200",
               "trainer.epochs=1", f"seed=range(0,{runs})",
               f"hydra.sweep.dir={work / 'sweep'}", f"hydra/launcher={launcher}"]
    if logger == "none":
        command.append("logger=none")
    else:
        command.append(f"logger.tracking_uri={uri}")
        if logger == "mlflow-no-plots":
            command += ["logger.plots=false", "logger.log_model=false"]
    if launcher == "joblib":
        command.append("hydra.launcher.n_jobs=2")
    env = dict(os.environ)
    if checkout != ROOT:  # its src/ ahead of the editable install's
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout / "src"),
                                                          env.get("PYTHONPATH")]))
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, env=env)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"sweep failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    if logger != "none":
        check_sweep(uri, runs)
    return elapsed, cpu


def _children_cpu() -> float:
    """CPU seconds of finished child processes (loky workers are reaped by the sweep)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_sweep(uri: str, runs: int) -> None:
    from mlplab.tracking import get_client

    client = get_client(uri)
    experiment = client.get_experiment_by_name("quick_moons")
    found = client.search_runs([experiment.experiment_id])
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    finished = [r for r in found if r.info.status == "FINISHED"]
    if len(children) != runs or len(finished) != runs + 1:
        raise SystemExit(f"expected {runs} finished children and a parent, got {len(found)} "
                         f"runs ({len(finished)} finished)")


def bench_sweeps(args, template: Path, scratch: Path) -> None:
    print(f"\n(1) per-run overhead: {args.runs} one-epoch runs per sweep (load {load()})")
    checkouts = {"": ROOT}
    if args.baseline:
        checkouts = {"this": ROOT, "baseline": Path(args.baseline).resolve()}
    variants = [(launcher, logger, code) for launcher in ("basic", "joblib")
                for logger in ("mlflow", "mlflow-no-plots", "none") for code in checkouts]
    best: dict = {}
    for repeat in range(args.repeat):
        for launcher, logger, code in variants:
            work = scratch / f"sweep-{launcher}-{logger}-{code or 'this'}-{repeat}"
            got = sweep_once(launcher, logger, template, work, args.runs, checkouts[code])
            old = best.get((launcher, logger, code), got)
            best[(launcher, logger, code)] = (min(old[0], got[0]), min(old[1], got[1]))
    for (launcher, logger, code), (wall, cpu) in best.items():
        print(f"  {code:8s} launcher={launcher:6s} logger={logger:15s} sweep {wall:6.2f} s "
              f"wall, {cpu:6.2f} s CPU -> {wall / args.runs:.3f} s wall, "
              f"{cpu / args.runs:.3f} s CPU per run")
    print(f"  (load afterwards {load()}; 'mlflow-no-plots' also skips the pyfunc model)")


# ----------------------------------------------------------------------- (2) logging
def edenau_job(epochs: int, log_every, callbacks):
    from mlplab.data import load_dataset
    from mlplab.nn import MLP, get_optimizer
    from mlplab.training import Trainer

    ds = load_dataset("sum_diff", data_dir=None, seed=42, dtype="float64", n_samples=10000,
                      legacy=False, test_size=0.3, split="ordered")
    model = MLP([2, 4, 4, 3], ["relu", "relu", "identity"], "mse_half", seed=42)
    optimizer = get_optimizer("sgd", model.params, lr=0.01)
    trainer = Trainer(model, optimizer, epochs=epochs, log_every=log_every,
                      metrics=["edenau_loss"], callbacks=callbacks, progress=False)
    return ds, trainer


def fit_once(epochs: int, log_every, logger: str, template: Path, work: Path) -> dict:
    """Wall and CPU seconds of `fit` (logging metrics and final weights; no plots or model)
    and wall seconds of a whole run as the app makes it (plots and pyfunc model too)."""
    from mlplab.tracking import MlflowRun

    ds, trainer = edenau_job(epochs, log_every, [])
    if logger == "none":
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.fit(ds)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"fit": wall, "cpu": cpu, "whole": wall}
    config = {"trainer": {"epochs": epochs, "log_every": log_every}, "seed": 42}
    with MlflowRun("bench_logging", tracking_uri=fresh_store(template, work / "loop"),
                   config=config, plots=False, log_model=False) as run:
        trainer.callbacks.append(run)
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.fit(ds)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ds, trainer = edenau_job(epochs, log_every, [])
    started = time.perf_counter()
    with MlflowRun("bench_logging", tracking_uri=fresh_store(template, work / "whole"),
                   config=config, dataset=ds) as run:
        trainer.callbacks.append(run)
        trainer.fit(ds)
    return {"fit": wall, "cpu": cpu, "whole": time.perf_counter() - started}


def bench_logging(args, template: Path, scratch: Path) -> None:
    print(f"\n(2) logging overhead: {args.epochs}-epoch edenau run (load {load()})")
    from mlplab.tracking import get_client

    get_client(fresh_store(template, scratch / "warmup"))  # import MLflow outside the timing
    variants = [(every, logger) for every in ("auto", 1) for logger in ("none", "mlflow")]
    best: dict = {}
    for repeat in range(args.repeat):
        for every, logger in variants:
            got = fit_once(args.epochs, every, logger, template,
                           scratch / f"log-{repeat}-{every}-{logger}")
            old = best.get((every, logger), got)
            best[(every, logger)] = {k: min(old[k], got[k]) for k in got}
    for every, logger in variants:
        row, base = best[(every, logger)], best[(every, "none")]
        print(f"  log_every={every!s:5s} logger={logger:6s} fit {row['fit']:6.2f} s wall "
              f"({100 * (row['fit'] / base['fit'] - 1):+5.1f}%), {row['cpu']:6.2f} s CPU "
              f"({100 * (row['cpu'] / base['cpu'] - 1):+5.1f}%); whole run {row['whole']:6.2f} s")
    auto, every1 = best[("auto", "none")], best[(1, "mlflow")]
    print(f"  log_every=1 with MLflow against log_every=auto without: "
          f"{100 * (every1['fit'] / auto['fit'] - 1):+.1f}% wall, "
          f"{100 * (every1['cpu'] / auto['cpu'] - 1):+.1f}% CPU")
    print(f"  (load afterwards {load()})")


# --------------------------------------------------------------------------- (3) CLI
def bench_cli(args, template: Path, scratch: Path) -> None:
    print(f"\n(3) `mlplab train experiment=edenau_regression trainer.epochs={args.epochs}` "
          f"end to end (load {load()})")
    best = {"mlflow": float("inf"), "none": float("inf")}
    for repeat in range(args.repeat):
        for logger in best:
            work = scratch / f"cli-{logger}-{repeat}"
            uri = fresh_store(template, work)
            command = [*MLPLAB, "train", "experiment=edenau_regression",
                       f"trainer.epochs={args.epochs}", f"logger={logger}",
                       f"hydra.run.dir={work / 'run'}"]
            if logger == "mlflow":
                command.append(f"logger.tracking_uri={uri}")
            started = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"run failed:\n{done.stderr[-3000:]}")
            best[logger] = min(best[logger], time.perf_counter() - started)
    print(f"  logger=mlflow {best['mlflow']:.2f} s, logger=none {best['none']:.2f} s "
          f"({100 * (best['mlflow'] / best['none'] - 1):+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("sweep", "logging", "cli", "all"), default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20_000)
    parser.add_argument("--baseline", metavar="DIR",
                        help="a checkout whose code the sweeps are also timed with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlplab-bench-") as tmp:
        scratch = Path(tmp)
        template = make_template_store(scratch)
        if args.part in ("sweep", "all"):
            bench_sweeps(args, template, scratch)
        if args.part in ("logging", "all"):
            bench_logging(args, template, scratch)
        if args.part in ("cli", "all"):
            bench_cli(args, template, scratch)


if __name__ == "__main__":
    main()
