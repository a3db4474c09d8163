"""MNIST files that are missing, malformed or not the published ones: one clear error each."""

from __future__ import annotations

import numpy as np
import pytest
from data_writers import small_mnist_arrays, write_label_csv, write_small_idx

from mlplab.data import load_dataset
from mlplab.data.mnist import read_mnist
from mlplab.errors import DataError


@pytest.fixture
def small(tmp_path):
    arrays = small_mnist_arrays()
    return arrays, write_small_idx(tmp_path / "small", arrays)


def corrupt(directory, name, payload):
    (directory / name).write_bytes(payload)
    return directory / name


MALFORMED = {
    "wrong magic": ("train-labels-idx1-ubyte", lambda b: b"\x00\x00\x09\x01" + b[4:],
                    r"expected uint8 labels"),
    "bad magic bytes": ("train-images-idx3-ubyte", lambda b: b"\x12\x34" + b[2:],
                        r"bad magic number 0x1234.*not an IDX file"),
    "truncated": ("train-images-idx3-ubyte", lambda b: b[:-100],
                  r"truncated: the header announces shape \(50, 28, 28\)"),
    "trailing bytes": ("t10k-labels-idx1-ubyte", lambda b: b + b"\x00\x01",
                       r"2 unexpected bytes after the data"),
    "empty": ("t10k-images-idx3-ubyte", lambda b: b"", r"file is empty"),
    "short header": ("t10k-images-idx3-ubyte", lambda b: b[:10],
                     r"truncated IDX header \(10 of 16 bytes\)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_idx_names_the_file(tmp_path, case):
    stem, mutate, pattern = MALFORMED[case]
    directory = write_small_idx(tmp_path / "bad", small_mnist_arrays(), gz=False)
    path = directory / stem
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(DataError, match=pattern) as info:
        read_mnist(directory, verify=False, cache=False)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_truncated_gzip_names_the_file(tmp_path):
    directory = write_small_idx(tmp_path / "gz", small_mnist_arrays())
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(DataError, match=r"truncated or corrupt gzip data") as info:
        read_mnist(directory, verify=False, cache=False)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(("mutation", "pattern"), [
    (lambda X, y: (X[:, :27, :], y), r"expected uint8 images of shape \(n, 28, 28\)"),
    (lambda X, y: (X, y[:-1]), r"49 labels for 50 images"),
    (lambda X, y: (X, np.where(y == 3, 12, y).astype(np.uint8)), r"label 12 out of range"),
])
def test_inconsistent_idx_contents(tmp_path, mutation, pattern):
    X_tr, y_tr, X_te, y_te = small_mnist_arrays()
    X_tr, y_tr = mutation(X_tr, y_tr)
    write_small_idx(tmp_path / "d", (np.ascontiguousarray(X_tr), y_tr, X_te, y_te))
    with pytest.raises(DataError, match=pattern):
        read_mnist(tmp_path / "d", verify=False, cache=False)


def csv_row(label, pixels):
    return ",".join(str(v) for v in [label, *pixels])


def with_rows(*rows):
    """Replace a table's data rows by `rows` (keeping its header line)."""
    return lambda text: text.split("\n")[0] + "\n" + "\n".join(rows) + "\n"


CSV_CASES = {
    "wrong column count": (with_rows(csv_row(1, [0] * 784), csv_row(2, [0] * 783)),
                           r"the number of columns changed from 785 to 784"),
    "non numeric": (with_rows(csv_row(3, [0] * 783 + ["abc"])),
                    r"could not convert string 'abc'"),
    "out of range": (with_rows(csv_row(3, [0] * 783 + [256])),
                     r"could not convert string '256'"),
    "empty": (lambda text: "", r"file is empty"),
    "header only": (with_rows(), r"no data rows"),
    "too few columns": (lambda text: "label,a,b\n1,2,3\n", r"rows have 3 columns"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_malformed_csv_names_the_file(tmp_path, case):
    mutate, pattern = CSV_CASES[case]
    X_tr, y_tr, X_te, y_te = small_mnist_arrays(n_train=5, n_test=5)
    directory = tmp_path / "csv"
    directory.mkdir()
    write_label_csv(directory / "mnist_test.csv", X_te, y_te)
    path = write_label_csv(directory / "mnist_train.csv", X_tr, y_tr)
    path.write_text(mutate(path.read_text()))
    with pytest.raises(DataError, match=pattern) as info:
        read_mnist(directory, cache=False)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "label and 784 integers 0-255" in message


def test_missing_files_say_where_and_how_to_download(tmp_path):
    directory = tmp_path / "data" / "mnist"
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path / "data")
    message = str(info.value)
    assert message.startswith(f"{directory}: no such directory (looked for ")
    assert "train-images-idx3-ubyte[.gz]" in message and "mnist_train.csv" in message
    assert f"mlplab data mnist --kind mnist --dir {directory}" in message


def test_partial_idx_set_lists_only_what_is_missing(small):
    _, directory = small
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r": mnist files missing \(looked for "
                                        r"t10k-labels-idx1-ubyte\[\.gz\] or "
                                        r"mnist_train\.csv and mnist_test\.csv"):
        read_mnist(directory, format="auto")


def test_checksum_mismatch_for_standard_names(small):
    _, directory = small
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: sha256 mismatch \(got "
                                        r"[0-9a-f]{64}, expected ba891046") as info:
        read_mnist(directory, cache=False)
    assert "dataset.verify=false" in str(info.value)


def test_fashion_gz_checksum_mismatch(tmp_path):
    write_small_idx(tmp_path / "fashion_mnist", small_mnist_arrays())
    with pytest.raises(DataError, match=r"md5 mismatch .*expected 8d4fb7e6c68d591d4c3dfef9ec"):
        load_dataset("fashion_mnist", data_dir=tmp_path)
