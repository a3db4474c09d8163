"""Speed of the NumPy engine against its peers (a script, not a test).

(a) One MNIST epoch of 784-256-128-10 ReLU/softmax cross-entropy, batch 1000, plain SGD:
    mlplab, scikit-learn's MLPClassifier (same layers, solver="sgd", no momentum), PyTorch
    CPU when installed, and the "GEMM roof": NumPy running only the eight matmuls of each
    batch (three forward, five backward) with the same shapes. Targets: mlplab/sklearn
    <= 1.0, and GEMM time >= 85% of mlplab's epoch (the rest is element-wise overhead).
(c) The same MNIST epoch with batch norm after each hidden dense layer and dropout 0.2
    after each hidden activation (training mode throughout), mlplab against PyTorch CPU
    with the same layers (Linear, BatchNorm1d, ReLU, Dropout). Target: mlplab/PyTorch <= 1.2.
(b) One full-batch epoch of the edenau network (2-4-4-3 ReLU/linear, 7000 samples,
    mse_half, lr 0.01), float64, against the tutorial's own style (layer objects, new
    arrays every epoch). Target: mlplab <= 0.3x. Measured twice: with glibc's default
    malloc settings (as a fresh process runs the tutorial: freed arrays of a few hundred KB
    go back to the OS and are faulted in again) and with malloc tuned not to trim, which
    leaves the tutorial only its arithmetic. Both peers make the same eight BLAS calls per
    epoch (bit-for-bit reproduction needs them), which bounds how far mlplab can pull ahead.

All peers run with the same BLAS/torch thread count (--threads); every figure is the minimum
over --repeat runs, peers interleaved within each repeat because the machine is shared. Both
wall-clock and process CPU time are reported; on a busy machine the CPU time (which does not
count time spent waiting for a core) is the steadier of the two, and the ratios use it.

    python benchmarks/bench_engine.py [--repeat 5] [--dtype float32|float64|both] [--threads 1]
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench_paths import mnist_dir
from mlplab.nn import MLP, get_optimizer

MNIST_DIR = mnist_dir()
SIZES = [784, 256, 128, 10]
BATCH, LR = 1000, 0.1
DROPOUT = 0.2  # (c): the rate after each hidden layer


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): 2 zero bytes, a type byte (0x08 = uint8), ndim, big-endian dims."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_train(directory: Path):
    """(60000, 784) pixels in [0, 1] and labels; random data of that shape if absent."""
    images = directory / "train-images-idx3-ubyte.gz"
    if images.exists():
        X = read_idx(images).reshape(60000, 784) / 255.0
        return X, read_idx(directory / "train-labels-idx1-ubyte.gz").astype(np.int64), "MNIST"
    rng = np.random.default_rng(0)
    return rng.random((60000, 784)), rng.integers(0, 10, 60000), "random data, MNIST shape"


def best_of(repeat: int, runners: dict) -> dict:
    """Minimum (wall, cpu) seconds per runner over `repeat` rounds, runners interleaved."""
    best = {name: (float("inf"), float("inf")) for name in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def report(times: dict, scale: float, unit: str) -> dict:
    """Print the table; return the CPU times used for the ratios."""
    print(f"    {'':<24s} {'wall':>10s} {'cpu':>10s}")
    for name, (wall, cpu) in times.items():
        print(f"    {name:<24s} {wall * scale:10.1f} {cpu * scale:10.1f} {unit}")
    return {name: cpu for name, (_, cpu) in times.items()}


def mlplab_epoch(X, Y, dtype, **layers):
    """`layers`: norm= and dropout= for (c)."""
    model = MLP(SIZES, ["relu", "relu", "softmax"], "softmax_cross_entropy", dtype=dtype,
                **layers)
    sgd = get_optimizer("sgd", model.params, LR)
    # contiguous (features, batch) arrays, as the trainer feeds them (it gathers each batch)
    batches = list(zip(column_batches(X, dtype), column_batches(Y, dtype), strict=True))

    def run():
        for xb, yb in batches:
            model.train_step(xb, yb, sgd, return_loss=True)
    return run


def column_batches(rows: np.ndarray, dtype) -> list[np.ndarray]:
    """Sample-major data as contiguous (features, BATCH) blocks."""
    return [np.ascontiguousarray(rows[s:s + BATCH].T, dtype=dtype)
            for s in range(0, rows.shape[0], BATCH)]


def gemm_roof_epoch(X, dtype):
    """Exactly the engine's matmuls, with the same operand layouts, and nothing else."""
    rng = np.random.default_rng(0)
    batches = column_batches(X, dtype)
    W = [rng.normal(size=(o, i)).astype(dtype) for i, o in zip(SIZES[:-1], SIZES[1:], strict=True)]
    A = [np.empty((o, BATCH), dtype) for o in SIZES[1:]]
    dA = [np.empty((i, BATCH), dtype) for i in SIZES[1:-1]]
    dW = [np.empty_like(w) for w in W]

    def run():
        for xb in batches:
            inputs = [xb, A[0], A[1]]
            for layer in range(3):
                np.dot(W[layer], inputs[layer], out=A[layer])
            for layer in (2, 1, 0):
                np.dot(A[layer], inputs[layer].T, out=dW[layer])
                if layer:
                    np.dot(W[layer].T, A[layer], out=dA[layer - 1])
    return run


def sklearn_epoch(X, labels, dtype):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    Xd = np.ascontiguousarray(X, dtype=dtype)
    clf = MLPClassifier(hidden_layer_sizes=tuple(SIZES[1:-1]), activation="relu", solver="sgd",
                        alpha=0.0, batch_size=BATCH, learning_rate="constant",
                        learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False,
                        max_iter=1, shuffle=False, random_state=0)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Xd, labels)
    return run


def torch_epoch(X, labels, dtype, threads, regularized=False):
    """regularized: BatchNorm1d before and Dropout after each hidden ReLU, for (c)."""
    import torch

    torch.set_num_threads(threads)
    kind = {"float32": torch.float32, "float64": torch.float64}[dtype]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:], strict=True)):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < 2:
            layers += ([torch.nn.BatchNorm1d(n_out), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT)]
                       if regularized else [torch.nn.ReLU()])
    model = torch.nn.Sequential(*layers).to(kind)
    model.train()
    sgd = torch.optim.SGD(model.parameters(), lr=LR)
    criterion = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.tensor(X, dtype=kind), torch.tensor(labels)

    def run():
        for s in range(0, Xt.shape[0], BATCH):
            sgd.zero_grad()
            criterion(model(Xt[s:s + BATCH]), yt[s:s + BATCH]).backward()
            sgd.step()
    return run


def bench_regularized(args, dtype):
    X, labels, source = mnist_train(args.mnist_dir)
    runners = {"mlplab": mlplab_epoch(X, np.eye(10)[labels], dtype, norm="batch",
                                      dropout=DROPOUT),
               "mlplab, plain layers": mlplab_epoch(X, np.eye(10)[labels], dtype)}
    try:
        runners["PyTorch CPU"] = torch_epoch(X, labels, dtype, args.threads, regularized=True)
    except ImportError:
        print("\n(c) skipped: PyTorch is not installed")
        return
    runners["mlplab"]()
    times = best_of(args.repeat, runners)
    print(f"\n(c) one epoch, 784-256-128-10, batch norm + dropout {DROPOUT}, batch {BATCH}, "
          f"{dtype}, {source}")
    times = report(times, 1000, "ms")
    print(f"    mlplab / PyTorch   = {times['mlplab'] / times['PyTorch CPU']:.2f}  "
          "(target <= 1.2)")


def bench_mnist(args, dtype):
    X, labels, source = mnist_train(args.mnist_dir)
    runners = {"mlplab": mlplab_epoch(X, np.eye(10)[labels], dtype),
               "sklearn MLPClassifier": sklearn_epoch(X, labels, dtype),
               "GEMM roof (numpy)": gemm_roof_epoch(X, dtype)}
    try:
        runners["PyTorch CPU"] = torch_epoch(X, labels, dtype, args.threads)
    except ImportError:
        pass
    runners["mlplab"]()  # warm-up: buffers, BLAS threads, page faults
    times = best_of(args.repeat, runners)
    print(f"\n(a) one epoch, 784-256-128-10, batch {BATCH}, {dtype}, {source}")
    times = report(times, 1000, "ms")
    ours = times["mlplab"]
    print(f"    mlplab / sklearn   = {ours / times['sklearn MLPClassifier']:.2f}  (target <= 1.0)")
    if "PyTorch CPU" in times:
        print(f"    mlplab / PyTorch   = {ours / times['PyTorch CPU']:.2f}")
    print(f"    GEMM roof / mlplab = {times['GEMM roof (numpy)'] / ours:.0%}  (target >= 85%)")


class TutorialLayer:
    """The tutorial's layer object: weights, and Z/A/dW/db attributes replaced each epoch."""

    def __init__(self, n_in, n_out, activation, rng):
        self.W = rng.normal(size=(n_out, n_in)) * np.sqrt(2 / n_in)
        self.b = rng.normal(size=(n_out, 1)) * np.sqrt(2 / n_in)
        self.activation = activation


def tutorial_epoch(X, Y, lr=0.01):
    rng = np.random.default_rng(0)
    net = [TutorialLayer(2, 4, "relu", rng), TutorialLayer(4, 4, "relu", rng),
           TutorialLayer(4, 3, "linear", rng)]
    n = X.shape[1]

    def run():
        A = X
        for layer in net:
            layer.A_prev = A
            layer.Z = np.add(np.dot(layer.W, A), layer.b)
            relu = layer.activation == "relu"
            layer.A = A = np.maximum(layer.Z, np.zeros(layer.Z.shape)) if relu else layer.Z
        dZ = A - Y
        for i in range(len(net) - 1, -1, -1):
            layer = net[i]
            if i < len(net) - 1:
                slope = np.maximum(np.sign(layer.A), np.zeros(layer.A.shape))
                dZ = np.multiply(np.dot(net[i + 1].W.T, dZ), slope)
            layer.dW = np.dot(dZ, layer.A_prev.T) / n
            layer.db = np.sum(dZ, axis=1, keepdims=True) / n
        for layer in net:
            layer.W = layer.W - lr * layer.dW
            layer.b = layer.b - lr * layer.db
    return run


def tune_glibc_malloc() -> bool:
    """Stop glibc from returning freed memory to the OS (and re-faulting it in) between
    allocations, as it does by default for arrays of a few hundred KB. Returns False when
    not on glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 256 << 20) and
                libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))


def bench_tiny(args, allocator: str):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(2, 7000)), rng.normal(size=(3, 7000))
    model = MLP([2, 4, 4, 3], ["relu", "relu", "identity"], "mse_half")
    sgd = get_optimizer("sgd", model.params, 0.01)
    tutorial = tutorial_epoch(X, Y)
    epochs = args.tiny_epochs

    def ours():
        for _ in range(epochs):
            model.train_step(X, Y, sgd)

    def theirs():
        for _ in range(epochs):
            tutorial()
    # many short runs: the minimum then more likely catches a quiet moment of the machine
    times = best_of(10 * args.repeat, {"mlplab": ours, "tutorial style": theirs})
    print(f"\n(b) edenau 2-4-4-3, 7000 samples, full batch, float64, {allocator} "
          f"({epochs} epochs per run)")
    times = report(times, 1e6 / epochs, "us/epoch")
    print(f"    mlplab / tutorial  = {times['mlplab'] / times['tutorial style']:.2f}  "
          "(target <= 0.3)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--tiny-epochs", type=int, default=50)
    parser.add_argument("--mnist-dir", type=Path, default=MNIST_DIR)
    parser.add_argument("--skip", choices=["mnist", "regularized", "tiny"], action="append",
                        default=[])
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        print(f"threads: {args.threads}, repeats: {args.repeat} (minimum reported)")
        # (b) first, while the allocator is as a fresh process has it (the big arrays of
        # (a) make glibc stop trimming, which hides the tutorial's allocation cost)
        if "tiny" not in args.skip:
            bench_tiny(args, "default allocator")
        dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
        if "mnist" not in args.skip:
            for dtype in dtypes:
                bench_mnist(args, dtype)
        if "regularized" not in args.skip:
            for dtype in dtypes:
                bench_regularized(args, dtype)
        if "tiny" not in args.skip and tune_glibc_malloc():
            bench_tiny(args, "glibc malloc tuned not to trim")


if __name__ == "__main__":
    main()
