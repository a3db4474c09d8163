"""What the harness (Hydra + trainer + MLflow) costs on top of the training itself.

(1) Per-run overhead: wall time of `mlplab train -m` sweeping 16 one-epoch runs of a tiny
    network on 200 moons, divided by 16, with the basic launcher (jobs one after the other
    in one process) and the joblib launcher (2 worker processes), MLflow on; the same
    sweeps with `logger=none` show MLflow's share. Target: <= 0.5 s per run with joblib.
    The store exists before the sweep (creating a SQLite store is a one-off migration of
    several seconds, reported separately).
(2) Logging overhead: a 20,000-epoch full-batch run of the edenau network (2-4-4-3 ReLU,
    7000 samples, mse_half + the edenau_loss metric) with the default cadence
    (log_every=auto, i.e. every 20 epochs) against no logger, and with log_every=1
    forced. Reported for `fit` alone (what logging adds to the loop; target <= 5%) and for
    the whole run (opening the MLflow run, params, config, final weights, plots, model).
    Also end to end through `mlplab train experiment=edenau_regression` with MLflow on/off.

Every figure is the minimum over --repeat runs, variants interleaved (the machine is
shared); the load average is printed because on a busy machine wall times stretch.

    python benchmarks/bench_harness.py [--part sweep|logging|cli|all] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
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
def sweep_once(launcher: str, logger: str, template: Path, work: Path, runs: int) -> float:
    work.mkdir(parents=True)
    uri = fresh_store(template, work)
    command = [*MLPLAB, "train", "-m", "experiment=quick_moons", "dataset.n_samples=200",
               "trainer.epochs=1", f"seed=range(0,{runs})", f"logger={logger}",
               f"hydra.sweep.dir={work / 'sweep'}", f"hydra/launcher={launcher}"]
    if logger == "mlflow":
        command.append(f"logger.tracking_uri={uri}")
    if launcher == "joblib":
        command.append("hydra.launcher.n_jobs=2")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    if logger == "mlflow":
        check_sweep(uri, runs)
    return elapsed


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
    variants = [(launcher, logger) for launcher in ("basic", "joblib")
                for logger in ("mlflow", "none")]
    best = {v: float("inf") for v in variants}
    for repeat in range(args.repeat):
        for launcher, logger in variants:
            work = scratch / f"sweep-{launcher}-{logger}-{repeat}"
            best[(launcher, logger)] = min(best[(launcher, logger)],
                                           sweep_once(launcher, logger, template, work,
                                                      args.runs))
    for (launcher, logger), seconds in best.items():
        print(f"  launcher={launcher:7s} logger={logger:7s} sweep {seconds:6.2f} s  "
              f"-> {seconds / args.runs:.3f} s per run")
    print(f"  (load afterwards {load()})")


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


def logging_once(variant: str, epochs: int, template: Path, work: Path) -> tuple[float, float]:
    """(fit seconds, whole-run seconds) for one variant."""
    from mlplab.tracking import MlflowRun

    log_every = 1 if variant == "mlflow, log_every=1" else "auto"
    ds, trainer = edenau_job(epochs, log_every, [])
    started = time.perf_counter()
    if variant == "none":
        trainer.fit(ds)
        fit = total = time.perf_counter() - started
        return fit, total
    uri = fresh_store(template, work)
    config = {"trainer": {"epochs": epochs, "log_every": log_every}, "seed": 42}
    with MlflowRun("bench_logging", tracking_uri=uri, config=config, dataset=ds) as run:
        trainer.callbacks.append(run)
        fit_started = time.perf_counter()
        trainer.fit(ds)
        fit = time.perf_counter() - fit_started  # includes final weights, plots, model
    return fit, time.perf_counter() - started


def bench_logging(args, template: Path, scratch: Path) -> None:
    print(f"\n(2) logging overhead: {args.epochs}-epoch edenau run (load {load()})")
    from mlplab.tracking import get_client

    get_client(fresh_store(template, scratch / "warmup"))  # import MLflow outside the timing
    variants = ("none", "mlflow, log_every=auto", "mlflow, log_every=1")
    best = {v: (float("inf"), float("inf")) for v in variants}
    loop_only = {v: float("inf") for v in variants}
    for repeat in range(args.repeat):
        for variant in variants:
            fit, total = logging_once(variant, args.epochs, template,
                                      scratch / f"log-{repeat}-{variant[-4:]}")
            best[variant] = (min(best[variant][0], fit), min(best[variant][1], total))
        # the loop alone: metrics buffered and written, no end-of-run artifacts
        for variant in variants[1:]:
            loop_only[variant] = min(loop_only[variant],
                                     loop_seconds(variant, args.epochs, template,
                                                  scratch / f"loop-{repeat}-{variant[-4:]}"))
    base = best["none"][0]
    for variant, (fit, total) in best.items():
        loop = loop_only[variant]
        extra = "" if variant == "none" else (
            f"  loop only {loop:.2f} s ({100 * (loop / base - 1):+.1f}%)")
        print(f"  {variant:24s} fit+end {fit:6.2f} s ({100 * (fit / base - 1):+5.1f}%)  "
              f"whole run {total:6.2f} s{extra}")
    print(f"  (load afterwards {load()})")


def loop_seconds(variant: str, epochs: int, template: Path, work: Path) -> float:
    """fit with an MlflowRun that logs metrics but no final artifacts (plots=False, no
    dataset, so no model): the cost logging adds to the epoch loop itself."""
    from mlplab.tracking import MlflowRun

    log_every = 1 if variant.endswith("=1") else "auto"
    ds, trainer = edenau_job(epochs, log_every, [])
    uri = fresh_store(template, work)
    with MlflowRun("bench_logging", tracking_uri=uri, plots=False, log_model=False) as run:
        run._log_final_artifacts = lambda *a: None  # weights upload is not loop cost
        trainer.callbacks.append(run)
        started = time.perf_counter()
        trainer.fit(ds)
        return time.perf_counter() - started


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
