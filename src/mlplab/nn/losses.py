"""Losses: a value for reporting and a `delta` that starts backpropagation.

Convention (docs/architecture.md): each loss is a mean over the n samples of a per-sample
loss l_i, and `delta(Z, A, Y)` returns dl_i/dZ_i column by column, i.e. n times the gradient
of the mean. Dense layers divide by n after their matmul, so the mean's gradient comes out.

Losses whose natural output activation cancels its Jacobian (sigmoid + binary
cross-entropy, softmax + softmax cross-entropy) return the fused `A - Y`; the others return
dl/dA chained through the output activation's backward (`activation` argument). Values of
the cross-entropies are computed from the logits Z, never from log(A), so they stay finite.

The two cross-entropies take `smoothing` (label smoothing, epsilon): the targets become
(1 - epsilon) * Y + epsilon / K, K the number of classes (2 for each sigmoid output, the
number of outputs for softmax), as `torch.nn.CrossEntropyLoss(label_smoothing=...)`. The
value reported is the smoothed loss, as PyTorch reports it.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import Interval, check_keywords
from mlplab.errors import ConfigError
from mlplab.nn._registry import lookup
from mlplab.nn.activations import Activation
from mlplab.nn.metrics import accuracy, edenau_loss

__all__ = ["LOSSES", "Loss", "accuracy", "check_output_activation", "edenau_loss", "get_loss"]

LABEL_SMOOTHING = Interval(float, 0, 1)  # 1 would make every target uniform


class Loss:
    """Base class. `output_activation` names the activation the loss must sit on
    (None: any); `fused` says that `delta` is then `A - Y` without the activation's backward."""

    name = "loss"
    output_activation: str | None = None
    fused = False

    def value(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> float:
        raise NotImplementedError

    def grad_output(self, A: np.ndarray, Y: np.ndarray, out=None) -> np.ndarray:
        """Per-sample dl/dA (used when the loss is not fused with its activation)."""
        raise NotImplementedError

    def delta(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray,
              activation: Activation | None = None, out=None) -> np.ndarray:
        """dl_i/dZ for every sample i; `activation` is the output activation (None means
        identity); `out` may be a preallocated array of Z's shape and dtype."""
        if self.fused:
            return np.subtract(A, Y, out=out)
        dA = self.grad_output(A, Y, out=out)
        if activation is None:
            return dA
        return activation.backward(Z, A, dA, out=dA)

    def __repr__(self) -> str:
        return self.name


class MeanSquaredError(Loss):
    """mean over samples and outputs of (A - Y)^2; l_i = sum_k (A - Y)^2 / K."""

    name = "mse"

    def value(self, Z, A, Y):
        diff = np.subtract(A, Y)
        return float(np.mean(np.square(diff, out=diff)))

    def grad_output(self, A, Y, out=None):
        out = np.subtract(A, Y, out=out)
        out *= 2.0 / A.shape[0]
        return out


class HalfSumSquaredError(Loss):
    """0.5 * sum((A - Y)^2) / n, the tutorials' form: delta = A - Y for a linear output."""

    name = "mse_half"

    def value(self, Z, A, Y):
        diff = np.subtract(A, Y)
        return 0.5 * float(np.sum(np.square(diff, out=diff))) / A.shape[1]

    def grad_output(self, A, Y, out=None):
        return np.subtract(A, Y, out=out)


class _CrossEntropy(Loss):
    """The fused delta of a cross-entropy on its natural activation, A - Y, with label
    smoothing when `smoothing` > 0 (`classes(K)` is the K of the smoothed targets)."""

    fused = True

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = float(smoothing)

    def classes(self, n_outputs: int) -> int:
        raise NotImplementedError

    def targets(self, Y: np.ndarray, out=None) -> np.ndarray:
        """Y, or the smoothed targets (1 - eps) * Y + eps / K in `out`."""
        if not self.smoothing:
            return Y
        out = np.multiply(Y, 1.0 - self.smoothing, out=out)
        out += self.smoothing / self.classes(Y.shape[0])
        return out

    def delta(self, Z, A, Y, activation=None, out=None):
        if not self.smoothing:
            return np.subtract(A, Y, out=out)
        out = self.targets(Y, out=out)
        return np.subtract(A, out, out=out)


class BinaryCrossEntropy(_CrossEntropy):
    """Binary cross-entropy of K independent sigmoid outputs (one for a binary task; one
    per label for multi-label targets; one per class, one-vs-all, for one-hot targets),
    from the logits: per element max(z, 0) - z*y + log1p(exp(-|z|)), averaged over the K
    outputs as `torch.nn.BCEWithLogitsLoss` (mean over all elements) does. Fused delta:
    (sigmoid(Z) - Y) / K = (A - Y) / K."""

    name = "binary_cross_entropy"
    output_activation = "sigmoid"

    def classes(self, n_outputs):
        return 2  # each output is its own two-class problem

    def value(self, Z, A, Y):
        Y = self.targets(Y)
        soft = np.abs(Z)
        np.negative(soft, out=soft)
        np.exp(soft, out=soft)
        np.log1p(soft, out=soft)
        soft += np.maximum(Z, 0)
        soft -= Z * Y
        value = float(np.sum(soft)) / Z.shape[1]
        return value if Z.shape[0] == 1 else value / Z.shape[0]

    def delta(self, Z, A, Y, activation=None, out=None):
        out = super().delta(Z, A, Y, activation, out)
        if out.shape[0] > 1:
            out /= out.shape[0]
        return out


class SoftmaxCrossEntropy(_CrossEntropy):
    """Cross-entropy of a softmax output with one-hot (or probability) targets, from the
    logits via log-sum-exp: l_i = -sum_k y_k (z_k - logsumexp(z)). Fused delta: A - Y
    (valid because each target column sums to 1, smoothed or not)."""

    name = "softmax_cross_entropy"
    output_activation = "softmax"

    def classes(self, n_outputs):
        return n_outputs

    def value(self, Z, A, Y):
        shift = Z.max(axis=0, keepdims=True)
        shifted = np.subtract(Z, shift)
        log_norm = np.log(np.exp(shifted).sum(axis=0, keepdims=True))
        shifted -= log_norm  # now log-softmax
        shifted *= self.targets(Y)
        return -float(np.sum(shifted)) / Z.shape[1]


class SoftmaxMSENoJacobian(Loss):
    """The arask tutorial's loss: value = mean((A - Y)^2) over all elements of a softmax
    output, delta = 2 * (A - Y).

    The delta is NOT the gradient of the value: it omits both the softmax Jacobian and the
    1/K of the mean over outputs. Kept on purpose to reproduce that tutorial; use
    `softmax_cross_entropy` (or `mse`, which chains through the Jacobian) for a true gradient.
    """

    name = "softmax_mse_nojac"
    output_activation = "softmax"

    def value(self, Z, A, Y):
        return MSE.value(Z, A, Y)

    def delta(self, Z, A, Y, activation=None, out=None):
        out = np.subtract(A, Y, out=out)
        out *= 2.0
        return out


def check_output_activation(loss, activation, key: str, given: str | None = None) -> None:
    """Refuse an output activation that `loss` cannot sit on (its `output_activation`):
    the pair would silently compute something else. `loss` and `activation` are classes
    or instances; `key` names the setting in the message and `given` is the activation's
    name as the user wrote it (an alias such as `linear`)."""
    needed = loss.output_activation
    if needed is not None and activation.name != needed:
        raise ConfigError(f"{key}: {given or activation.name!r} cannot be used with loss "
                          f"{loss.name!r}; valid choices: {needed}")


MSE = MeanSquaredError()

LOSSES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mse_half": HalfSumSquaredError,
    "binary_cross_entropy": BinaryCrossEntropy,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "softmax_mse_nojac": SoftmaxMSENoJacobian,
}


def get_loss(name: str | Loss, **kwargs) -> Loss:
    """Build a loss from its name (`smoothing=` for the cross-entropies); a `Loss`
    instance is returned unchanged."""
    if isinstance(name, Loss):
        return name
    cls = lookup(LOSSES, name, "loss")
    check_keywords(cls.__init__, kwargs, "loss", name)
    return cls(**kwargs)
