"""Training jobs run in their own processes by the tracking tests.

    python mlflow_job.py long   TRACKING_URI READY_FILE   # a fit too long to end: send SIGTERM
    python mlflow_job.py writer TRACKING_URI INDEX        # logs 30 evaluations, one write each
    python mlflow_job.py opener TRACKING_URI INDEX        # opens the store, one empty run
"""

import sys
import time
from pathlib import Path

import numpy as np

from mlplab.data import Dataset
from mlplab.nn import MLP, get_optimizer
from mlplab.tracking import MlflowRun
from mlplab.training import Trainer

EXPERIMENT = "jobs"


def two_blobs(n=200, seed=0) -> Dataset:
    """Two overlapping Gaussian classes in 2-D (no scikit-learn import: jobs start faster)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, 2)) + 1.5 * labels[:, None]
    cut = n * 4 // 5
    return Dataset("two_blobs", "binary", X[:cut], labels[:cut], X[cut:], labels[cut:],
                   n_classes=2)


def small_job(epochs, **trainer_kw):
    ds = two_blobs()
    model = MLP([2, 8, 1], ["relu", "sigmoid"], "binary_cross_entropy", seed=0)
    optimizer = get_optimizer("sgd", model.params, lr=0.1)
    return ds, model, Trainer(model, optimizer, epochs=epochs, **trainer_kw)


class TouchOnFirstEvaluation:
    def __init__(self, path):
        self.path = Path(path)

    def on_epoch_end(self, epoch, metrics):
        if not self.path.exists():
            self.path.write_text(str(epoch))


def long_fit(uri, ready):
    ds, _, trainer = small_job(10_000_000, log_every=50, checkpoint_every=1_000_000)
    with MlflowRun(EXPERIMENT, tracking_uri=uri, run_name="long") as run:
        trainer.callbacks += [run, TouchOnFirstEvaluation(ready)]
        result = trainer.fit(ds)
    print(result.status, result.epochs_run)


def writer(uri, index):
    started = time.perf_counter()
    ds, _, trainer = small_job(30, log_every=1)
    with MlflowRun(EXPERIMENT, tracking_uri=uri, run_name=f"writer-{index}",
                   config={"index": int(index)}, flush_seconds=0.0, plots=False) as run:
        trainer.callbacks.append(run)
        opened = time.perf_counter()
        trainer.fit(ds)
    print(f"setup {opened - started:.2f}s, fit and close {time.perf_counter() - opened:.2f}s")


def opener(uri, index):
    with MlflowRun(EXPERIMENT, tracking_uri=uri, run_name=f"opener-{index}"):
        pass


if __name__ == "__main__":
    mode, uri, arg = sys.argv[1:4]
    {"long": long_fit, "writer": writer, "opener": opener}[mode](uri, arg)
