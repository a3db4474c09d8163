"""Normalization after a hidden dense layer: batch norm and layer norm, then the activation.

A normalized hidden layer computes Z = W @ A_prev + b (the `Dense` layer, identity
activation), then Y = gain * (Z - mean) / sqrt(var + eps) + bias, then A = activation(Y).
Batch norm takes mean and variance per unit over the batch (axis 1) while training and
keeps running averages of them for evaluation, as `torch.nn.BatchNorm1d` does (biased
variance to normalize, unbiased variance in the running average, `momentum` the weight of
the new batch). Layer norm takes them per sample over the units (axis 0), the same in
training and evaluation, as `torch.nn.LayerNorm` over the last dimension.

Backward follows the engine's convention (see `losses`): the incoming dA holds per-sample
gradients of the summed loss, the gain and bias gradients are left as sums (the model
divides every gradient by n at once), and the gradient passed down is linear in dA, so it
needs no scaling of its own.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import Choice, Interval
from mlplab.errors import DataError
from mlplab.nn.activations import Activation

NORMS = ("none", "batch", "layer")
NORM = Choice(NORMS)
NORM_MOMENTUM = Interval(float, 0, 1, closed="right")  # 0 would never update the averages
NORM_EPS = Interval(float, 0, closed="neither")


def normalize_eval(kind: str, Z: np.ndarray, gain, bias, running_mean=None,
                   running_var=None, eps: float = 1e-5) -> np.ndarray:
    """The evaluation-time normalization as a new array (the pyfunc model's forward),
    with the operations of the layers below in the same order, so the same values."""
    if kind == "batch":
        centered, var = Z - running_mean, running_var
    else:
        centered = Z - Z.mean(axis=0, keepdims=True)
        var = np.einsum("ij,ij->j", centered, centered)[None, :] / Z.shape[0]
    xhat = centered * (1.0 / np.sqrt(var + eps))
    return xhat * gain + bias


class _Norm:
    """Shared forward/backward of both kinds; subclasses say which axis the statistics run
    over and whether evaluation differs from training."""

    axis = 0
    kind = "none"

    def __init__(self, n_units: int, activation: Activation, storage, eps: float,
                 dtype) -> None:
        """`storage`: (gain, bias, dgain, dbias), each (n_units, 1), views into the model's
        flat parameter and gradient buffers."""
        self.n_units, self.activation, self.eps = n_units, activation, float(eps)
        self.gain, self.bias, self.dgain, self.dbias = storage
        self.dtype = dtype
        self._in_place = not activation.backward_reads_Z
        self._buffers: dict[int, tuple[np.ndarray, ...]] = {}
        self._current: tuple[np.ndarray, ...] | None = None
        self._inv_std: np.ndarray | None = None
        self._training = True

    def _buffers_for(self, n: int) -> tuple[np.ndarray, ...]:
        found = self._buffers.get(n)
        if found is None:
            if len(self._buffers) >= 4:  # as Dense: a batch, a last batch, evaluations
                del self._buffers[next(iter(self._buffers))]
            xhat = np.empty((self.n_units, n), dtype=self.dtype)
            Y = np.empty_like(xhat)
            A = Y if self._in_place else np.empty_like(Y)
            found = self._buffers[n] = (xhat, Y, A, np.empty_like(xhat))
        return found

    def _center(self, Z: np.ndarray, training: bool, xhat: np.ndarray):
        """Write Z - mean into xhat; return the variance to normalize with."""
        raise NotImplementedError

    def forward(self, Z: np.ndarray, training: bool) -> np.ndarray:
        """A = activation(gain * normalized Z + bias), in a reused buffer."""
        xhat, Y, A, scratch = buf = self._buffers_for(Z.shape[1])
        var = self._center(Z, training, xhat)
        inv_std = np.add(var, self.eps)
        np.sqrt(inv_std, out=inv_std)
        np.divide(1.0, inv_std, out=inv_std)
        xhat *= inv_std
        np.multiply(xhat, self.gain, out=Y)
        Y += self.bias
        self.activation.forward(Y, out=A)
        self._current, self._inv_std, self._training = buf, inv_std, training
        return A

    @property
    def A(self) -> np.ndarray:
        return self._current[2]

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """dZ of the dense layer below from dA (computed in dA's buffer); fills dgain and
        dbias with sums over the batch."""
        xhat, Y, A, scratch = self._current
        dY = self.activation.backward(Y, A, dA, out=dA)
        np.einsum("ij,ij->i", dY, xhat, out=self.dgain[:, 0])
        np.add.reduce(dY, axis=1, keepdims=True, out=self.dbias)
        return self._input_gradient(dY, xhat, scratch)

    def _input_gradient(self, dY, xhat, scratch) -> np.ndarray:
        """dZ from dY = dL/d(output before the activation), in dY's buffer."""
        raise NotImplementedError


class BatchNorm(_Norm):
    """Batch normalization over the batch (axis 1) with running statistics for evaluation.
    `running`: (mean, var) arrays of shape (n_units, 1), updated in place while training."""

    axis = 1
    kind = "batch"

    def __init__(self, n_units, activation, storage, running, momentum: float = 0.1,
                 eps: float = 1e-5, dtype="float64"):
        super().__init__(n_units, activation, storage, eps, dtype)
        self.running_mean, self.running_var = running
        self.momentum = float(momentum)

    def _center(self, Z, training, xhat):
        if not training:
            np.subtract(Z, self.running_mean, out=xhat)
            return self.running_var
        n = Z.shape[1]
        if n < 2:
            raise DataError("architecture.norm: batch norm needs at least 2 samples per "
                            "training batch, got 1; use trainer.batch_size >= 2 or norm: layer")
        mean = Z.mean(axis=1, keepdims=True)
        np.subtract(Z, mean, out=xhat)
        var = np.einsum("ij,ij->i", xhat, xhat)[:, None]
        var /= n
        m = self.momentum
        self.running_mean *= 1.0 - m
        self.running_mean += m * mean
        self.running_var *= 1.0 - m
        self.running_var += (m * n / (n - 1)) * var  # the unbiased variance, as PyTorch
        return var

    def _input_gradient(self, dY, xhat, scratch):
        scale = self.gain * self._inv_std  # (units, 1)
        if self._training:
            # dZ = gain / std * (dY - mean(dY) - xhat * mean(dY * xhat)), the means per unit
            # over the batch, which are dbias / n and dgain / n
            n = dY.shape[1]
            np.multiply(xhat, self.dgain / n, out=scratch)
            dY -= scratch
            dY -= self.dbias / n
        dY *= scale
        return dY


class LayerNorm(_Norm):
    """Layer normalization over the units of each sample (axis 0), with a gain and a bias
    per unit; training and evaluation compute the same thing."""

    axis = 0
    kind = "layer"

    def _center(self, Z, training, xhat):
        np.subtract(Z, Z.mean(axis=0, keepdims=True), out=xhat)
        var = np.einsum("ij,ij->j", xhat, xhat)[None, :]
        var /= Z.shape[0]
        return var

    def _input_gradient(self, dY, xhat, scratch):
        # dZ = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std, dxhat = gain * dY,
        # the means per sample over the units
        units = dY.shape[0]
        dxhat = np.multiply(dY, self.gain, out=dY)
        along = np.einsum("ij,ij->j", dxhat, xhat)[None, :]
        along /= units
        dxhat -= dxhat.mean(axis=0, keepdims=True)
        np.multiply(xhat, along, out=scratch)
        dxhat -= scratch
        dxhat *= self._inv_std
        return dxhat
