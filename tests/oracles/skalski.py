# ruff: noqa: NPY002  (the tutorials draw from the legacy global stream; so must the oracle)
"""Oracle for the binary-classification tutorial (ReLU hidden layers, sigmoid output, BCE).

Plain functions over explicit arrays, following the tutorial's arithmetic:

* the global legacy stream is seeded with 2 after the data are drawn, then each layer in
  order gets W = randn(out, in)*0.1 followed by b = randn(out, 1)*0.1;
* the cost is -(y.log(p) + (1-y).log(1-p))/m on the sigmoid output p;
* the backward pass goes through the chain: dA = -(y/p - (1-y)/(1-p)), then dZ = dA*s*(1-s)
  with s recomputed from Z for the sigmoid, dZ = dA with Z <= 0 zeroed for ReLU;
  dW = (dZ @ A_prev.T)/m, db = row sums of dZ / m, dA_prev = W.T @ dZ;
* full-batch gradient descent; train metrics use the prediction made before the update;
  accuracy thresholds p > 0.5.
"""

import numpy as np
from sklearn.datasets import make_circles, make_moons
from sklearn.model_selection import train_test_split

CIRCLES_SIZES = (2, 50, 100, 200, 100, 50, 1)
MOONS_SIZES = (2, 25, 50, 50, 25, 1)


def circles_data(data_seed, n_samples=1000, factor=0.3, noise=0.1, test_size=0.1):
    """The older revision's data; its draw was unseeded, so the seed here is ours."""
    x, y = make_circles(n_samples=n_samples, factor=factor, noise=noise, random_state=data_seed)
    return train_test_split(x, y, test_size=test_size, random_state=42)


def moons_data(n_samples=1000, noise=0.2, data_seed=100, test_size=0.1):
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=data_seed)
    return train_test_split(x, y, test_size=test_size, random_state=42)


def draw_params(sizes, seed=2):
    np.random.seed(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        weight = np.random.randn(fan_out, fan_in) * 0.1
        bias = np.random.randn(fan_out, 1) * 0.1
        params.append([weight, bias])
    return params


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(params, x):
    """Return (output, pre-activations, inputs of each layer)."""
    pre, inputs = [], []
    a = x
    for depth, (weight, bias) in enumerate(params):
        inputs.append(a)
        z = np.dot(weight, a) + bias
        pre.append(z)
        a = sigmoid(z) if depth == len(params) - 1 else np.maximum(0, z)
    return a, pre, inputs


def cost(p, y):
    m = p.shape[1]
    return float(np.squeeze(-1 / m * (np.dot(y, np.log(p).T) + np.dot(1 - y, np.log(1 - p).T))))


def accuracy(p, y):
    return float(np.mean((p > 0.5).astype(float) == y))


def gradients(params, p, y, pre, inputs):
    m = y.shape[1]
    grads = [None] * len(params)
    d_a = -(np.divide(y, p) - np.divide(1 - y, 1 - p))
    for depth in range(len(params) - 1, -1, -1):
        z = pre[depth]
        if depth == len(params) - 1:
            s = sigmoid(z)
            d_z = d_a * s * (1 - s)
        else:
            d_z = np.array(d_a, copy=True)
            d_z[z <= 0] = 0
        grads[depth] = (np.dot(d_z, inputs[depth].T) / m, np.sum(d_z, axis=1, keepdims=True) / m)
        d_a = np.dot(params[depth][0].T, d_z)
    return grads


def run(epochs, dataset="moons", data_seed=None, log_every=1, lr=0.01, init_seed=2) -> dict:
    """Train on `dataset` ('moons' or 'circles'); same result shape as the other oracles."""
    if dataset == "moons":
        sizes = MOONS_SIZES
        x_tr, x_te, y_tr, y_te = moons_data(data_seed=100 if data_seed is None else data_seed)
    else:
        sizes = CIRCLES_SIZES
        x_tr, x_te, y_tr, y_te = circles_data(0 if data_seed is None else data_seed)
    x_tr, x_te = np.transpose(x_tr), np.transpose(x_te)
    y_tr = y_tr.reshape(1, -1).astype(float)
    y_te = y_te.reshape(1, -1).astype(float)
    params = draw_params(sizes, init_seed)
    history = {k: [] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
    for epoch in range(1, epochs + 1):
        p, pre, inputs = forward(params, x_tr)
        grads = gradients(params, p, y_tr, pre, inputs)
        for layer, (d_w, d_b) in zip(params, grads, strict=True):
            layer[0] -= lr * d_w
            layer[1] -= lr * d_b
        if epoch % log_every == 0 or epoch == epochs:
            p_te = forward(params, x_te)[0]
            history["train_loss"].append((epoch, cost(p, y_tr)))
            history["train_accuracy"].append((epoch, accuracy(p, y_tr)))
            history["test_loss"].append((epoch, cost(p_te, y_te)))
            history["test_accuracy"].append((epoch, accuracy(p_te, y_te)))
    named = {}
    for i, (w, b) in enumerate(params, start=1):
        named[f"W{i}"], named[f"b{i}"] = w, b
    return {"history": history, "params": named}
