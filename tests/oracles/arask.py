# ruff: noqa: NPY002  (the tutorials draw from the legacy global stream; so must the oracle)
"""Oracle for the MNIST tutorial (784-256-128-10, ReLU, softmax output, mini-batch GD).

Plain functions over explicit (features, samples) arrays. What follows the tutorial:

* inputs divided by the global maximum of the array, labels one-hot;
* the global legacy stream: weights and biases ~ randn (std 1) drawn W1, b1, W2, b2, W3, b3,
  then each epoch `np.random.shuffle` of an index vector, applied to the *already shuffled*
  arrays (the tutorial reassigns its training arrays, so the permutations compose);
* MSE on the softmax output with its Jacobian left out: the output delta is 2*(out - y);
* every gradient is the average of per-sample outer products, accumulated sample by sample
  and divided by the batch size (the order in which the tutorial's mean over a stack of
  outer products adds them up);
* reported train loss/accuracy are running means over the epoch's batches, each taken
  before that batch's update; the last partial batch is dropped.
"""

import gzip
from pathlib import Path

import numpy as np

SIZES = (784, 256, 128, 10)


def read_idx(path: Path) -> np.ndarray:
    """Minimal IDX reader: big-endian header (magic, dims) then raw uint8 data."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(directory) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (n, 784) uint8, labels_train, x_test, labels_test) from IDX(.gz) files."""
    directory = Path(directory)

    def pick(stem):
        for name in (stem + ".gz", stem):
            if (directory / name).exists():
                return read_idx(directory / name)
        raise FileNotFoundError(directory / stem)

    x_tr = pick("train-images-idx3-ubyte").reshape(-1, 784)
    x_te = pick("t10k-images-idx3-ubyte").reshape(-1, 784)
    return x_tr, pick("train-labels-idx1-ubyte"), x_te, pick("t10k-labels-idx1-ubyte")


def prepare(images, labels):
    """Sample-major images -> (784, n) float64 scaled by the global max, (10, n) one-hot."""
    x = np.asarray(images, dtype=np.float64)
    x = x / np.max(x)
    onehot = np.zeros((len(labels), 10))
    onehot[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)] = 1.0
    return x, onehot


def draw_params():
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        params.append((np.random.randn(fan_out, fan_in), np.random.randn(fan_out, 1)))
    return params


def forward(params, x):
    """x (784, B) -> list of (pre-activation, activation) per layer, plus the input."""
    trace = [(None, x)]
    for depth, (w, b) in enumerate(params):
        z = w @ trace[-1][1] + b
        if depth == len(params) - 1:
            shifted = np.exp(z - np.max(z, axis=0))
            a = shifted / np.sum(shifted, axis=0)
        else:
            a = np.maximum(z, 0)
        trace.append((z, a))
    return trace


def averaged_outer(deltas, inputs):
    """Mean over samples of outer(delta_i, input_i), summed one sample at a time."""
    n = deltas.shape[1]
    w_acc = np.zeros((deltas.shape[0], inputs.shape[0]))
    b_acc = np.zeros((deltas.shape[0], 1))
    for i in range(n):
        w_acc += np.outer(deltas[:, i], inputs[:, i])
        b_acc += deltas[:, i:i + 1]
    return w_acc / n, b_acc / n


def step(params, x, y, lr):
    """One batch: forward, backward without the softmax Jacobian, update. Returns output."""
    trace = forward(params, x)
    delta = 2 * (trace[-1][1] - y)
    grads = [None] * len(params)
    for depth in range(len(params) - 1, -1, -1):
        grads[depth] = averaged_outer(delta, trace[depth][1])
        if depth > 0:
            delta = (params[depth][0].T @ delta) * (trace[depth][0] > 0)
    new = [(w - lr * dw, b - lr * db) for (w, b), (dw, db) in zip(params, grads, strict=True)]
    return new, trace[-1][1]


def accuracy(out, y):
    return float(np.mean(np.argmax(out, axis=0) == np.argmax(y, axis=0)))


def run(epochs, x_train, labels_train, x_test, labels_test, *, seed=0, batch_size=1000,
        lr=1e-3) -> dict:
    """Train on sample-major arrays; returns per-epoch history and final params."""
    xs_tr, ys_tr = prepare(x_train, labels_train)
    xs_te, ys_te = prepare(x_test, labels_test)
    np.random.seed(seed)
    params = draw_params()
    history = {k: [] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
    n_batches = xs_tr.shape[0] // batch_size
    for epoch in range(1, epochs + 1):
        order = np.arange(xs_tr.shape[0])
        np.random.shuffle(order)
        xs_tr, ys_tr = xs_tr[order], ys_tr[order]
        loss_sum = acc_sum = 0.0
        for k in range(n_batches):
            rows = slice(k * batch_size, (k + 1) * batch_size)
            x, y = xs_tr[rows].T, ys_tr[rows].T
            params, out = step(params, x, y, lr)
            loss_sum += np.mean((out - y) ** 2)
            acc_sum += accuracy(out, y)
        out_te = forward(params, xs_te.T)[-1][1]
        history["train_loss"].append((epoch, float(loss_sum / n_batches)))
        history["train_accuracy"].append((epoch, float(acc_sum / n_batches)))
        history["test_loss"].append((epoch, float(np.mean((out_te - ys_te.T) ** 2))))
        history["test_accuracy"].append((epoch, accuracy(out_te, ys_te.T)))
    named = {}
    for i, (w, b) in enumerate(params, start=1):
        named[f"W{i}"], named[f"b{i}"] = w, b
    return {"history": history, "params": named}
