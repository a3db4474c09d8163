"""IDX and CSV writers for the data tests.

They follow the format descriptions, not mlplab's reader, so a reader bug cannot hide
behind a matching writer bug.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# The four files of MNIST, as published.
MNIST_GZ = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0x00 0x00 0x08 ndim, big-endian uint32 dims, data."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes(order="C")


def write_idx(path: Path, array: np.ndarray) -> Path:
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def small_mnist_arrays(n_train=50, n_test=20, seed=0):
    """Random 28x28 uint8 images and labels 0-9 (every label present in train)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_train + n_test, 28, 28), dtype=np.uint8)
    labels = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


def write_small_idx(directory: Path, arrays, gz=True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    X_tr, y_tr, X_te, y_te = arrays
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", X_tr)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", y_tr)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", X_te)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", y_te)
    return directory


def write_label_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """The Kaggle layout: header `label,1x1,...,28x28`, then label and 784 pixels per row."""
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = [",".join(map(str, [int(lab), *img.reshape(-1).tolist()]))
            for img, lab in zip(images, labels, strict=True)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path
