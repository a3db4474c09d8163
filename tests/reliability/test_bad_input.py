"""Malformed invocations of the real `mlplab` CLI: each ends with status 2, exactly one
line on stderr naming the key or file (and what would be valid), no traceback, and no
MLflow run in the store (not even one left RUNNING: the store file is not even created).

Each case runs as a subprocess in its own parametrized test (pytest-xdist runs several at
once), in a directory of its own.
"""

from __future__ import annotations

import gzip
import http.server
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import QUICK, cli_env, free_port, run_cli, store_runs, train_args

# --------------------------------------------------------------------------- data files


def idx_file(path: Path, array: np.ndarray, *, keep: float = 1.0) -> None:
    """An IDX file (gzip-compressed when the name ends in .gz), written from the format's
    description; `keep` < 1 keeps only that fraction of the bytes (a cut-off download)."""
    header = np.array([0, 0, 8, array.ndim], np.uint8).tobytes()
    payload = header + np.array(array.shape, ">u4").tobytes() + array.astype(np.uint8).tobytes()
    data = gzip.compress(payload) if path.suffix == ".gz" else payload
    path.write_bytes(data[:int(len(data) * keep)])


def small_mnist(directory: Path, *, n_train: int = 40, n_test: int = 10) -> Path:
    """Random images under the standard MNIST file names (so checksums cannot match)."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        idx_file(directory / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        idx_file(directory / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return directory


def mnist_csv(directory: Path, bad_cell: str | None) -> Path:
    """mnist_train.csv / mnist_test.csv (label then 784 pixels), one cell replaced."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in (("mnist_train.csv", 30), ("mnist_test.csv", 10)):
        table = np.column_stack([np.arange(n) % 10, rng.integers(0, 256, (n, 784))])
        lines = [",".join(["label", *(f"p{i}" for i in range(784))])]
        lines += [",".join(map(str, row)) for row in table]
        if bad_cell is not None and name == "mnist_train.csv":
            cells = lines[5].split(",")
            cells[300] = bad_cell
            lines[5] = ",".join(cells)
        (directory / name).write_text("\n".join(lines) + "\n")
    return directory


def empty_image_file(root: Path) -> Path:
    directory = small_mnist(root / "mnist")
    (directory / "train-images-idx3-ubyte.gz").write_bytes(b"")
    return directory / "train-images-idx3-ubyte.gz"


def truncated_gzip(root: Path) -> Path:
    directory = small_mnist(root / "mnist")
    path = directory / "train-images-idx3-ubyte.gz"
    idx_file(path, np.random.default_rng(2).integers(0, 256, (40, 28, 28)), keep=0.5)
    return path


def truncated_idx(root: Path) -> Path:
    """A complete gzip stream whose IDX header announces more images than it holds."""
    directory = small_mnist(root / "mnist")
    path = directory / "train-labels-idx1-ubyte.gz"
    full = np.array([0, 0, 8, 1], np.uint8).tobytes() + np.array([40], ">u4").tobytes()
    path.write_bytes(gzip.compress(full + bytes(25)))
    return path


# --------------------------------------------------------------------------- the cases

@dataclass
class Case:
    """`args` after `mlplab` ({tmp} is the case's directory, {port} a closed port);
    `expect`: regular expressions the stderr line must match (the key or file first);
    `setup(tmp)` writes the files the case needs."""

    args: list[str]
    expect: list[str]
    setup: object = None
    store: str = "fresh"  # "fresh": no store file yet; "migrated": an empty store exists
    train: bool = True
    uri: bool = True  # pass logger.tracking_uri (else the environment decides)
    env: dict[str, str] = field(default_factory=dict)


MNIST = ["dataset=mnist", "data_dir={tmp}"]
# Cases that load a toy dataset use xor with an ordered split: no scikit-learn import.
XOR = ["dataset=xor", "dataset.split=ordered"]
CASES = {
    "unknown dataset": Case(["dataset=moonz"], [r"^dataset: unknown choice 'moonz'",
                                                r"valid choices: .*\bmoons\b"]),
    "unknown optimizer group choice": Case(["optimizer=adamx"], [
        r"^optimizer: unknown choice 'adamx'", r"valid choices: .*\badam\b"]),
    "unknown initializer group choice": Case(["initializer=xavier"], [
        r"^initializer: unknown choice", r"valid choices: .*\bglorot_normal\b"]),
    "unknown schedule": Case(["schedule=cyclic"], [r"^schedule: unknown choice",
                                                   r"valid choices: .*\bcosine\b"]),
    "unknown experiment preset": Case(["experiment=tutorial"], [
        r"^experiment: unknown choice", r"valid choices: .*\bskalski_moons\b"]),
    "unknown launcher": Case(["hydra/launcher=threads"], [r"^hydra/launcher: unknown choice",
                                                          r"valid choices: .*\bjoblib\b"]),
    "unknown key": Case(["trainer.epoch=3"], [r"^trainer\.epoch: unknown key",
                                              r"valid keys: .*\bepochs\b"]),
    "added unknown key": Case(["+optimizer.lrr=0.1"], [r"^optimizer\.lrr: unknown key",
                                                       r"valid keys: .*\blr\b"]),
    "wrong type for a number": Case(["optimizer.lr=fast"], [
        r"^optimizer\.lr: invalid value 'fast'", r"must be a number"]),
    "wrong type for an integer": Case(["trainer.epochs=ten"], [
        r"^trainer\.epochs: invalid value 'ten'", r"must be an integer"]),
    "negative lr": Case(["optimizer.lr=-0.1"], [r"^optimizer\.lr: invalid value -0\.1",
                                                r"must be a finite number > 0"]),
    "zero lr": Case(["optimizer.lr=0"], [r"^optimizer\.lr: invalid value 0", r"> 0"]),
    "nan lr": Case(["optimizer.lr=nan"], [r"^optimizer\.lr: invalid value nan", r"finite"]),
    "batch size 0": Case(["trainer.batch_size=0"], [r"^trainer\.batch_size: invalid value 0",
                                                    r"integer >= 1"]),
    "batch size larger than the data": Case([*XOR, "trainer.batch_size=5000"], [
        r"^trainer\.batch_size: invalid value 5000", r"at most .*\(800\) or null"]),
    "hidden size 0": Case(["architecture.hidden=[16,0]"], [
        r"^architecture\.hidden: invalid value \[16, 0\]", r"integers >= 1"]),
    "unknown activation": Case(["architecture.activation=relux"], [
        r"^architecture\.activation: unknown value 'relux'", r"valid choices: .*\brelu\b"]),
    "binary cross-entropy on a regression": Case(
        ["dataset=sum_diff", "architecture.loss=binary_cross_entropy"],
        [r"^architecture\.loss: 'binary_cross_entropy' needs a classification dataset",
         r"valid choices: mse, mse_half"]),
    "label smoothing without a cross-entropy": Case(
        ["architecture.loss=mse", "architecture.label_smoothing=0.1"],
        [r"^architecture\.label_smoothing: invalid value 0\.1", r"binary_cross_entropy"]),
    "a dropout rate per layer, too few": Case(
        ["architecture.hidden=[8,8]", "architecture.dropout=[0.1]"],
        [r"^architecture\.dropout: invalid value \[0\.1\]", r"one rate per hidden layer"]),
    "batch norm over batches of 1": Case(
        [*XOR, "architecture.norm=batch", "trainer.batch_size=1"],
        [r"^trainer\.batch_size: invalid value 1", r"architecture\.norm=layer"]),
    "softmax with 1 output": Case([*XOR, "architecture.output_activation=softmax"], [
        r"^architecture\.output_activation: 'softmax'", r"valid choices: identity, sigmoid"]),
    "loss and output activation mismatch": Case(
        ["architecture.loss=softmax_cross_entropy", "architecture.output_activation=sigmoid"],
        [r"^architecture\.output_activation: 'sigmoid' cannot be used",
         r"valid choices: softmax"]),
    "unknown dtype": Case(["trainer.dtype=float16"], [r"^trainer\.dtype: unknown value",
                                                      r"valid choices: float32, float64"]),
    "negative epochs": Case(["trainer.epochs=-1"], [r"^trainer\.epochs: invalid value -1",
                                                    r"integer >= 1"]),
    "zero epochs": Case(["trainer.epochs=0"], [r"^trainer\.epochs: invalid value 0"]),
    "unknown initializer name": Case(["initializer.name=magic"], [
        r"^initializer\.name: unknown value 'magic'", r"valid choices: .*\bhe_normal\b"]),
    "unknown optimizer name": Case(["optimizer.name=sgdx"], [
        r"^optimizer\.name: unknown value 'sgdx'", r"valid choices: .*\bsgd\b"]),
    "momentum out of range": Case(["optimizer.momentum=1.5"], [
        r"^optimizer\.momentum: invalid value 1\.5", r"\[0, 1\)"]),
    "negative seed": Case(["seed=-1"], [r"^seed: invalid value -1", r"2\*\*32"]),
    "negative dataset noise": Case([*XOR, "dataset.noise=-1"], [r"^dataset\.noise: ", r">= 0"]),
    "monitor of a missing split": Case([*XOR, "trainer.monitor=val_loss"], [
        r"^trainer\.monitor: unknown value 'val_loss'", r"valid choices: .*\btest_loss\b"]),
    "bad override syntax": Case(["optimizer.lr=[0.1,"], [r"^bad override 'optimizer\.lr=\[0\.1,'"]),
    "sweep syntax without -m": Case(["optimizer.lr=0.1,0.2"], [
        r"^optimizer\.lr: .* is a sweep", r"-m \(--multirun\)"]),
    "one bad job in a sweep": Case(["-m", "optimizer.lr=0.1,-1"], [
        r"^optimizer\.lr: invalid value -1", r"\(job: .*optimizer\.lr=-1\)$"]),
    "one bad dataset in a sweep": Case(["-m", *XOR, "dataset.n_samples=1000,20",
                                        "trainer.batch_size=100"],
                                       [r"^trainer\.batch_size: invalid value 100",
                                        r"dataset\.n_samples=20"]),
    "dataset directory missing": Case(MNIST, [r"^\S*/mnist: no such directory",
                                              r"mlplab data mnist"]),
    "dataset file empty": Case(MNIST, [r"^\S*/mnist/train-images-idx3-ubyte\.gz: file is empty"],
                               setup=empty_image_file),
    "dataset file truncated (gzip)": Case(MNIST, [
        r"^\S*/mnist/train-images-idx3-ubyte\.gz: truncated or corrupt"], setup=truncated_gzip),
    "dataset file truncated (IDX)": Case(MNIST + ["dataset.verify=false"], [
        r"^\S*/mnist/train-labels-idx1-ubyte\.gz: truncated"], setup=truncated_idx),
    "dataset checksum mismatch": Case(MNIST, [
        r"^\S*/mnist/train-images-idx3-ubyte\.gz: sha256 mismatch", r"dataset\.verify=false"],
        setup=lambda tmp: small_mnist(tmp / "mnist")),
    "CSV with a non-numeric cell": Case(MNIST + ["dataset.format=csv"], [
        r"^\S*/mnist/mnist_train\.csv: ", r"integers 0-255"],
        setup=lambda tmp: mnist_csv(tmp / "mnist", "abc")),
    "CSV with a NaN cell": Case(MNIST + ["dataset.format=csv"], [
        r"^\S*/mnist/mnist_train\.csv: ", r"integers 0-255"],
        setup=lambda tmp: mnist_csv(tmp / "mnist", "nan")),
    "tracking server unreachable": Case(["logger.tracking_uri=http://127.0.0.1:{port}"], [
        r"^logger\.tracking_uri: cannot reach .*http://127\.0\.0\.1:\d+", r"logger=none"]),
    "tracking server wants credentials": Case(["logger.tracking_uri=http://127.0.0.1:{auth}"], [
        r"^logger\.tracking_uri: the MLflow server at \S+ wants credentials \(HTTP 401\)",
        r"MLFLOW_TRACKING_USERNAME"]),
    "tracking server refuses the credentials": Case(
        ["logger.tracking_uri=http://127.0.0.1:{auth}"],
        [r"^logger\.tracking_uri: .* refused the credentials given \(HTTP 401\)"],
        env={"MLFLOW_TRACKING_USERNAME": "someone", "MLFLOW_TRACKING_PASSWORD": "wrong"}),
    "tracking URI from the environment unreachable": Case([], [
        r"^MLFLOW_TRACKING_URI: cannot reach .*http://127\.0\.0\.1:\d+"], uri=False,
        env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:{port}"}),
    "mlplab runs against an unreachable server": Case(
        ["runs", "--tracking-uri", "http://127.0.0.1:{port}"],
        [r"^tracking URI: cannot reach the MLflow server at http://127\.0\.0\.1:\d+"],
        train=False),
    "mlplab reproduce against an unreachable server": Case(
        ["reproduce", "0123456789abcdef", "--tracking-uri", "http://127.0.0.1:{port}"],
        [r"^tracking URI: cannot reach the MLflow server at http://127\.0\.0\.1:\d+"],
        train=False),
    "tracking URI with an unknown scheme": Case(["logger.tracking_uri=mlfow://somewhere"], [
        r"^logger\.tracking_uri: unsupported scheme 'mlfow'", r"valid choices: .*\bsqlite\b"]),
    "tracking store in an unwritable place": Case(
        ["logger.tracking_uri=sqlite:////proc/mlplab-nowhere/mlflow.db"],
        [r"^logger\.tracking_uri: ", r"/proc/mlplab-nowhere"]),
    "tracking store file that is not a database": Case(
        ["logger.tracking_uri=sqlite:///{tmp}/notes.db"],
        [r"^logger\.tracking_uri: \S*/notes\.db is not an SQLite database"],
        setup=lambda tmp: (tmp / "notes.db").write_text("not a database\n" * 10)),
    "resume of an unknown run": Case(["trainer.resume=0123456789abcdef0123456789abcdef"], [
        r"^trainer\.resume: no run '0123456789abcdef0123456789abcdef'", r"mlplab runs"],
        store="migrated"),
    "unknown command": Case(["trian"], [r"^unknown command 'trian'",
                                        r"valid choices: .*\btrain\b"], train=False),
}


def _command(case: Case, tmp: Path, ports: dict) -> list[str]:
    args = [a.format(tmp=tmp, **ports) for a in case.args]
    if not case.train:
        return args
    flags = [a for a in args if a.startswith("-")]  # before the overrides, as argparse wants
    overrides = [a for a in args if not a.startswith("-")]
    command = train_args(tmp, tmp / "mlflow.db", *QUICK, "trainer.epochs=2", *overrides)
    if not case.uri:
        command = [a for a in command if not a.startswith("logger.tracking_uri=")]
    return command[:1] + flags + command[1:]


class _WantsCredentials(http.server.BaseHTTPRequestHandler):
    """What an authenticating proxy in front of a tracking server answers without them."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def ports():
    """{"port": a closed port, "auth": a server answering 401} for the cases' {placeholders}."""
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WantsCredentials)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        # `port`: nothing listens there once the probe socket is closed.
        yield {"port": free_port(), "auth": proxy.server_address[1]}
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture
def outcome(name, tmp_path, ports, migrated_store):
    """(directory, finished process) of the case `name`, run as a real `mlplab` command.

    One case per test, so pytest-xdist spreads the cases over its workers."""
    case, tmp = CASES[name], tmp_path
    if case.setup is not None:
        case.setup(tmp)
    if case.store == "migrated":
        (tmp / "mlflow.db").write_bytes(migrated_store.read_bytes())
    env = cli_env(**{k: v.format(**ports) for k, v in case.env.items()})
    command = _command(case, tmp, ports)
    try:
        return tmp, run_cli(*command, cwd=tmp, timeout=90, env=env)
    except subprocess.TimeoutExpired as timeout:  # a hang is a failure of that case only
        return tmp, subprocess.CompletedProcess(command, -1, str(timeout.stdout),
                                                f"timed out: {timeout}")


def test_at_least_25_cases():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_no_run(name, outcome):
    case = CASES[name]
    tmp, proc = outcome
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, f"status {proc.returncode}; stderr:\n{proc.stderr}"
    assert len(lines) == 1, f"expected one stderr line, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    line = lines[0]
    assert line.startswith("mlplab: error: "), line
    message = line.removeprefix("mlplab: error: ")
    for pattern in case.expect:
        assert re.search(pattern, message), (pattern, message)
    store = tmp / "mlflow.db"
    assert store_runs(store) == []
    if case.store == "fresh":
        assert not store.exists(), "the store was created although nothing could run"
