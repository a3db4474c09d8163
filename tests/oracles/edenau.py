# ruff: noqa: NPY002  (the tutorials draw from the legacy global stream; so must the oracle)
"""Oracle for the sum/difference regression tutorial (2-4-4-3, ReLU, full-batch GD).

Written as plain functions over explicit arrays. The arithmetic follows the tutorial
where rounding could differ:

* data, then weights, all from the global legacy stream seeded once (rand(2, N)*100,
  then per layer randn(out, in)*sqrt(2/in) followed by randn(out, 1)*sqrt(2/in));
* per-row standardisation with the training part's mean and population std;
* the gradient of 0.5*sum((yhat-y)^2)/N: output dZ = yhat - y, dW = (dZ @ A_prev.T)/N,
  db = row sums of dZ / N, the ReLU derivative read from the activation (A > 0);
* the *reported* loss is the mean over samples of the Euclidean norm of the vector
  0.5*(yhat-y)^2, and the train value is taken with the weights before the update.
"""

import numpy as np

LAYER_SIZES = (2, 4, 4, 3)
N_SAMPLES = 10_000
N_TRAIN = 7_000


def make_data(seed: int = 42):
    """Draw inputs from the (already seeded) legacy stream; return raw train/test arrays."""
    np.random.seed(seed)
    inputs = np.random.rand(2, N_SAMPLES) * 100
    a, b = inputs[0], inputs[1]
    targets = np.stack([a + b, a - b, np.abs(a - b)])
    return inputs[:, :N_TRAIN], targets[:, :N_TRAIN], inputs[:, N_TRAIN:], targets[:, N_TRAIN:]


def row_stats(block):
    """Mean and population std of each row, one contiguous row at a time."""
    means = np.array([np.mean(block[r, :]) for r in range(block.shape[0])])
    stds = np.array([np.std(block[r, :]) for r in range(block.shape[0])])
    return means, stds


def scale(block, stats):
    means, stds = stats
    return np.stack([(block[r, :] - means[r]) / stds[r] for r in range(block.shape[0])])


def unscale(block, stats):
    means, stds = stats
    return np.stack([block[r, :] * stds[r] + means[r] for r in range(block.shape[0])])


def draw_params():
    """Weights then biases per layer from the global stream, He-scaled by fan-in."""
    params = []
    for fan_in, fan_out in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True):
        gain = np.sqrt(2 / fan_in)
        weight = np.random.randn(fan_out, fan_in) * gain
        bias = np.random.randn(fan_out, 1) * gain
        params.append((weight, bias))
    return params


def forward(params, x):
    """Return the activations of every layer, input first; hidden ReLU, linear output."""
    activations = [x]
    last = len(params) - 1
    for depth, (weight, bias) in enumerate(params):
        z = np.add(np.dot(weight, activations[-1]), bias)
        activations.append(z if depth == last else np.maximum(z, 0.0))
    return activations


def gradients(params, activations, y):
    """Backward pass of 0.5*sum((yhat-y)^2)/N; returns [(dW, db), ...] in layer order."""
    n = y.shape[1]
    grads = [None] * len(params)
    dz = activations[-1] - y
    for depth in range(len(params) - 1, -1, -1):
        a_prev = activations[depth]
        grads[depth] = (np.dot(dz, a_prev.T) / n, np.sum(dz, axis=1, keepdims=True) / n)
        if depth > 0:
            relu_slope = (a_prev > 0).astype(a_prev.dtype)
            dz = np.dot(params[depth][0].T, dz) * relu_slope
    return grads


def reported_loss(y, yhat):
    """Mean over samples of ||0.5*(yhat-y)^2||_2, the number the tutorial prints."""
    half_sq = 0.5 * (yhat - y) ** 2
    return float(np.mean(np.sqrt(np.einsum("ij,ij->j", half_sq, half_sq))))


def half_mse(y, yhat):
    """0.5*sum((yhat-y)^2)/N: the objective whose gradient training follows."""
    diff = yhat - y
    return float(0.5 * np.sum(diff * diff) / y.shape[1])


def run(epochs: int, log_every: int = 1, seed: int = 42, lr: float = 0.01) -> dict:
    """Train for `epochs` full-batch steps; metrics every `log_every` epochs and at the end.

    Train metrics use yhat before the epoch's update; test metrics use the updated weights.
    """
    x_raw_tr, y_raw_tr, x_raw_te, y_raw_te = make_data(seed)
    x_stats, y_stats = row_stats(x_raw_tr), row_stats(y_raw_tr)
    x_tr, y_tr = scale(x_raw_tr, x_stats), scale(y_raw_tr, y_stats)
    x_te, y_te = scale(x_raw_te, x_stats), scale(y_raw_te, y_stats)
    params = draw_params()
    history = {k: [] for k in ("train_loss", "train_edenau_loss", "test_loss", "test_edenau_loss")}
    for epoch in range(1, epochs + 1):
        acts = forward(params, x_tr)
        grads = gradients(params, acts, y_tr)
        params = [(w - lr * dw, b - lr * db)
                  for (w, b), (dw, db) in zip(params, grads, strict=True)]
        if epoch % log_every == 0 or epoch == epochs:
            yhat_te = forward(params, x_te)[-1]
            history["train_loss"].append((epoch, half_mse(y_tr, acts[-1])))
            history["train_edenau_loss"].append((epoch, reported_loss(y_tr, acts[-1])))
            history["test_loss"].append((epoch, half_mse(y_te, yhat_te)))
            history["test_edenau_loss"].append((epoch, reported_loss(y_te, yhat_te)))

    def predict(raw_inputs):
        """Raw (2, n) inputs -> raw (3, n) outputs through both scalers."""
        return unscale(forward(params, scale(raw_inputs, x_stats))[-1], y_stats)

    named = {}
    for i, (w, b) in enumerate(params, start=1):
        named[f"W{i}"], named[f"b{i}"] = w, b
    return {"history": history, "params": named, "predict": predict,
            "x_stats": x_stats, "y_stats": y_stats}
