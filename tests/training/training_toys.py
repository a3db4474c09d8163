"""Tiny in-memory datasets, models and a recording callback: each fit takes milliseconds."""

import numpy as np

from mlplab.data import Dataset
from mlplab.nn import MLP, get_optimizer


def make_regression(n=150, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 50, 3))
    y = X @ np.array([[1.0, -2.0], [0.5, 1.0], [0.0, 0.3]]) + 0.1 * rng.normal(size=(n + 50, 2))
    return Dataset("toy_regression", "regression", X[:n], y[:n], X[n:], y[n:])


def make_classification(n=120, classes=3, seed=0, val=False) -> Dataset:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, 2))
    labels = rng.integers(0, classes, size=n + 60)
    X = centers[labels] + rng.normal(size=(n + 60, 2))
    task = "binary" if classes == 2 else "multiclass"
    parts = dict(X_train=X[:n], y_train=labels[:n], X_test=X[n:n + 30], y_test=labels[n:n + 30])
    if val:
        parts.update(X_val=X[n + 30:], y_val=labels[n + 30:])
    return Dataset("toy_blobs", task, n_classes=classes, **parts)


def regression_model(seed=0, optimizer="sgd", lr=0.05, **kw):
    model = MLP([3, 8, 2], ["tanh", "identity"], "mse", seed=seed)
    return model, get_optimizer(optimizer, model.params, lr=lr, **kw)


def classifier_model(classes=3, seed=0, lr=0.1, optimizer="sgd", **kw):
    if classes == 2:
        model = MLP([2, 8, 1], ["relu", "sigmoid"], "binary_cross_entropy", seed=seed)
    else:
        model = MLP([2, 8, classes], ["relu", "softmax"], "softmax_cross_entropy", seed=seed)
    return model, get_optimizer(optimizer, model.params, lr=lr, **kw)


class Recorder:
    """A callback remembering every event, with copies of the weights at each one."""

    def __init__(self):
        self.events, self.epochs, self.weights, self.checkpoints = [], [], {}, {}
        self.trainer = None

    def on_train_start(self, trainer):
        self.trainer = trainer
        self.events.append(("start",))

    def on_epoch_end(self, epoch, metrics):
        self.epochs.append(epoch)
        self.weights[epoch] = self.trainer.model.state_dict()
        self.events.append(("epoch", epoch, dict(metrics)))

    def on_checkpoint(self, epoch, state):
        self.checkpoints[epoch] = (state, self.trainer.model.state_dict())
        self.events.append(("checkpoint", epoch))

    def on_train_end(self, status, reason):
        self.events.append(("end", status, reason))
