"""Helpers for the tutorial tests: run a preset through the real app, read back what it logged.

Every mlplab run here goes the way a user's does: Hydra composes `conf/train.yaml` with
`experiment=<preset>` and the test's overrides, `mlplab.job.run_job` trains it, and the
metrics and weights are read back from the MLflow store the run was logged to (a private
SQLite store per test session), so what is compared is what a user would see.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LoggedRun:
    run_id: str
    status: str
    history: dict[str, dict[int, float]]  # metric -> {epoch: value}
    weights: dict[str, np.ndarray]
    config: object  # the composed DictConfig


def compose_preset(preset: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from mlplab.config import conf_dir

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        return compose("train", overrides=[f"experiment={preset}", *overrides])


def run_preset(preset: str, overrides: list[str], tracking_uri: str) -> LoggedRun:
    """Compose, train through `run_job` into `tracking_uri`, and read the run back."""
    from mlflow import MlflowClient

    from mlplab.job import JobContext, run_job

    overrides = [*overrides, f"logger.tracking_uri={tracking_uri}", "logger.plots=false",
                 "logger.log_model=false"]
    cfg = compose_preset(preset, overrides)
    outcome = run_job(cfg, JobContext(preset=preset, overrides=overrides))
    client = MlflowClient(tracking_uri)
    run = client.get_run(outcome.run_id)
    history = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
               for key in run.data.metrics}
    local = client.download_artifacts(run.info.run_id, "weights/final.npz")
    with np.load(local, allow_pickle=False) as saved:
        weights = {k: saved[k] for k in saved.files}
    return LoggedRun(run.info.run_id, run.info.status, history, weights, cfg)


def project_mnist_dir() -> Path | None:
    """`<data_dir>/mnist` as the project resolves it, if it holds the training images."""
    from mlplab.data.paths import dataset_dir

    directory = dataset_dir(None, "mnist")
    names = ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte", "mnist_train.csv")
    return directory if any((directory / n).exists() for n in names) else None


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of uint8 `array`: magic 0x0000 08 <ndim>, big-endian dims, raw data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_fake_mnist(directory: Path, n_train: int, n_test: int, seed: int = 7) -> Path:
    """MNIST-shaped IDX files (sparse 28x28 uint8 images, labels 0-9) under directory/mnist.

    Content is random, so only the arithmetic is exercised, never the accuracy.
    """
    rng = np.random.default_rng(seed)
    target = directory / "mnist"
    target.mkdir(parents=True, exist_ok=True)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        ink = rng.random((n, 28, 28)) < 0.2
        images = np.where(ink, rng.integers(1, 256, (n, 28, 28)), 0).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
                gz.write(_idx_bytes(array))
            (target / f"{stem}-{kind}-ubyte.gz").write_bytes(buffer.getvalue())
    return target


def assert_histories_match(mlplab_history, oracle_history, keys, rtol=1e-10, atol=1e-12):
    """Every epoch mlplab logged for `keys` must equal the oracle's value there."""
    for key in keys:
        logged = mlplab_history[key]
        reference = dict(oracle_history[key])
        assert logged, f"mlplab logged no {key}"
        epochs = sorted(logged)
        missing = [e for e in epochs if e not in reference]
        assert not missing, f"{key}: oracle has no value at epochs {missing[:5]}"
        ours = np.array([logged[e] for e in epochs])
        theirs = np.array([reference[e] for e in epochs])
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol,
                                   err_msg=f"{key} differs from the oracle")


def assert_params_match(weights, oracle_params, rtol=1e-10, atol=1e-12):
    assert sorted(weights) == sorted(oracle_params)
    for name, value in oracle_params.items():
        np.testing.assert_allclose(weights[name], value, rtol=rtol, atol=atol,
                                   err_msg=f"final {name} differs from the oracle")
