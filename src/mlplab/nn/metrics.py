"""Metrics reported next to the loss (they never drive a gradient)."""

from __future__ import annotations

import numpy as np

from mlplab.constraints import Choice


def accuracy(A: np.ndarray, Y: np.ndarray) -> float:
    """Fraction of samples (columns) classified correctly.

    With K > 1 outputs the predicted class is argmax over axis 0, and Y is either one-hot
    (K, n) or integer labels (n,) / (1, n). With one output the prediction is A > 0.5 (A is
    a sigmoid probability) and Y holds 0/1 in a (1, n) row or an (n,) vector.
    """
    if A.shape[0] == 1:
        predicted = A.reshape(-1) > 0.5
        return float(np.mean(predicted == (np.asarray(Y).reshape(-1) > 0.5)))
    predicted = np.argmax(A, axis=0)
    labels = np.argmax(Y, axis=0) if Y.shape == A.shape else np.asarray(Y).reshape(-1)
    return float(np.mean(predicted == labels))


def exact_match_accuracy(A: np.ndarray, Y: np.ndarray) -> float:
    """Multi-label accuracy: the fraction of samples whose every label is predicted right
    (A > 0.5 against Y > 0.5), scikit-learn's `accuracy_score` on label indicators."""
    return float(np.mean(np.all((A > 0.5) == (Y > 0.5), axis=0)))


def label_accuracy(A: np.ndarray, Y: np.ndarray) -> float:
    """The fraction of (label, sample) pairs predicted right (A > 0.5 against Y > 0.5):
    1 - Hamming loss, the lenient companion of `exact_match_accuracy`."""
    return float(np.mean((A > 0.5) == (Y > 0.5)))


def edenau_loss(A: np.ndarray, Y: np.ndarray) -> float:
    """The edenau tutorial's reported loss: the mean over samples of the L2 norm of the
    per-sample vector 0.5 * (yhat - y)^2.

    It is not the loss being minimised (that is `mse_half`); it is computed with the same
    operations in the same order as the tutorial so its published digits reproduce.
    """
    individual = 0.5 * (A - Y) ** 2
    return float(np.mean(np.linalg.norm(individual, axis=0)))


METRICS = {"accuracy": accuracy, "edenau_loss": edenau_loss, "label_accuracy": label_accuracy}
METRIC = Choice(sorted(METRICS), noun="metric")  # a name a run may ask to be reported
