"""Where the benchmarks find MNIST, by the project's own rules and never by a machine path:
`<data_dir>/mnist` (`$MLPLAB_DATA_DIR`, else `data/` under the checkout), else the shared
copy beside the checkout (`../shared/data/mnist`), which CI and the developers' machines
have."""

from __future__ import annotations

from pathlib import Path

from mlplab.config import project_root
from mlplab.data import default_data_dir

MNIST_FILE = "train-images-idx3-ubyte.gz"


def data_dir_with_mnist() -> Path:
    """The first data directory whose `mnist/` holds MNIST's files (the project's
    `data_dir` if none does, so that a message names where to put them)."""
    candidates = [Path(default_data_dir()), project_root().parent / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "mnist" / MNIST_FILE).is_file():
            return candidate
    return candidates[0]


def mnist_dir() -> Path:
    return data_dir_with_mnist() / "mnist"
