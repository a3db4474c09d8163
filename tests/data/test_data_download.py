"""Downloading against a local HTTP server: mirrors, checksums, atomic files, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest
from data_writers import MNIST_GZ

from mlplab.cli.data import data_main
from mlplab.data.download import download_mnist
from mlplab.errors import DataError

SHA256_OF_DECOMPRESSED = {  # independent copy of the published digests (shared SHA256SUMS)
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@pytest.fixture
def mirrors(http_root, shared_mnist):
    """good/ holds real MNIST, bad/ a copy with one flipped byte per file, missing/ nothing."""
    root, base, server = http_root
    for name in ("good", "bad", "missing"):
        (root / name).mkdir()
    for name in MNIST_GZ:
        shutil.copy(shared_mnist / name, root / "good" / name)
        payload = bytearray((shared_mnist / name).read_bytes())
        payload[len(payload) // 2] ^= 0xFF
        (root / "bad" / name).write_bytes(bytes(payload))
    return {name: f"{base}/{name}/" for name in ("good", "bad", "missing")}, server


def test_missing_mirror_then_good_one(tmp_path, mirrors):
    urls, server = mirrors
    target = tmp_path / "mnist"
    paths = download_mnist(target, "mnist", [urls["missing"], urls["good"]], progress=False)
    assert sorted(p.name for p in paths) == sorted(MNIST_GZ)
    for stem, digest in SHA256_OF_DECOMPRESSED.items():
        with gzip.open(target / f"{stem}.gz") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST_GZ)  # no temp files
    assert sum(r.startswith("/missing/") for r in server.requests) == 4


def test_corrupt_mirror_is_rejected_and_the_next_one_used(tmp_path, mirrors):
    urls, server = mirrors
    target = tmp_path / "mnist"
    download_mnist(target, "mnist", [urls["bad"], urls["good"]], progress=False)
    for name in MNIST_GZ:
        assert (target / name).read_bytes() == (tmp_path / "www" / "good" / name).read_bytes()


def test_every_mirror_failing_is_one_error_listing_each(tmp_path, mirrors):
    urls, _ = mirrors
    target = tmp_path / "mnist"
    with pytest.raises(DataError) as info:
        download_mnist(target, "mnist", [urls["missing"], urls["bad"]], progress=False)
    message = str(info.value)
    assert message.startswith("train-images-idx3-ubyte.gz: download failed from every mirror")
    assert f"{urls['missing']}train-images-idx3-ubyte.gz: HTTP 404" in message
    assert f"{urls['bad']}train-images-idx3-ubyte.gz: " in message
    assert "\n" not in message
    assert list(target.iterdir()) == []  # nothing half-written left behind


def test_fashion_checksums_reject_mnist_files(tmp_path, mirrors):
    urls, _ = mirrors
    with pytest.raises(DataError, match=r"md5 mismatch"):
        download_mnist(tmp_path / "f", "fashion_mnist", [urls["good"]], progress=False)


def test_valid_files_are_not_downloaded_again(tmp_path, mirrors):
    urls, server = mirrors
    target = tmp_path / "mnist"
    download_mnist(target, "mnist", [urls["good"]], progress=False)
    requests = len(server.requests)
    download_mnist(target, "mnist", [urls["good"]], progress=False)
    assert len(server.requests) == requests
    download_mnist(target, "mnist", [urls["good"]], progress=False, force=True)
    assert len(server.requests) == requests + 4


def test_progress_bar_goes_to_stderr(tmp_path, mirrors, capsys):
    urls, _ = mirrors
    download_mnist(tmp_path / "m", "mnist", [urls["good"]], progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    # the shared train-images file has 9,630,634 bytes
    assert "train-images-idx3-ubyte.gz" in captured.err and "/9.6 MB" in captured.err


def test_cli_downloads_verifies_and_warms_the_cache(tmp_path, mirrors, capsys):
    urls, _ = mirrors
    target = tmp_path / "mnist"
    status = data_main(["mnist", "--dir", str(target), "--mirror", urls["missing"],
                        urls["good"], "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"mnist: 60000 train and 10000 test images verified in {target}" in captured.out
    assert (target / ".cache" / "mnist-idx.json").is_file()


def test_cli_failure_is_status_2_and_one_line(tmp_path, mirrors, capsys):
    urls, _ = mirrors
    status = data_main(["mnist", "--dir", str(tmp_path / "m"), "--mirror", urls["missing"],
                        "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("mlplab: error: train-images-idx3-ubyte.gz: download failed")
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["mnist", "--kind", "cifar"], [], ["mnist", "--bogus"]])
def test_cli_usage_errors(argv, capsys):
    assert data_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlplab data: error: ") and err.count("\n") == 1
