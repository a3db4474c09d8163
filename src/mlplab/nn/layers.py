"""The dense layer: Z = W @ A_prev + b, A = activation(Z), with preallocated buffers.

Layout is (features, samples): W is (n_out, n_in), b is (n_out, 1), a batch A_prev is
(n_in, n). Backward follows the project's convention: given dZ (per-sample gradients of the
summed loss), dW = (dZ @ A_prev.T) / n and db = dZ.sum(axis=1) / n, divided after the
matmul and the sum exactly as the tutorials write it, so their arithmetic reproduces bit
for bit.

Work buffers (Z, A and the gradient passed to the previous layer) are allocated once per
batch size and reused, so a training step allocates almost nothing. The arrays returned by
`forward` and `backward` are those buffers: they are overwritten by the next call with the
same batch size; copy them to keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlplab.nn._registry import resolve_dtype
from mlplab.nn.activations import Activation, Identity, get_activation

MAX_CACHED_BATCH_SIZES = 4  # a training batch, the last partial batch, and evaluations


@dataclass
class _Buffers:
    Z: np.ndarray
    A: np.ndarray  # the same array as Z when A may overwrite Z (see Dense)
    dA_prev: np.ndarray | None  # gradient for the previous layer, None for the first layer


class Dense:
    """A fully connected layer. `input_grad=False` (the first layer of a network) skips
    computing the gradient with respect to the input, which nobody needs.

    Unless `keep_Z` is set, A overwrites Z in place when the activation's backward does
    not read Z (identity, relu, sigmoid, tanh, softmax); `Z` then returns A. A model keeps
    Z of its output layer, which the cross-entropy losses read (they work from logits).
    """

    def __init__(self, n_in: int, n_out: int, activation: str | Activation = "identity",
                 dtype="float64", input_grad: bool = True, storage=None, keep_Z: bool = False):
        """`storage`: optional (W, b, dW, db) arrays of the right shapes and dtype to use
        instead of fresh ones (`MLP` passes views into one flat buffer)."""
        self.dtype = resolve_dtype(dtype)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = get_activation(activation)
        self.input_grad = input_grad
        self._identity = isinstance(self.activation, Identity)
        self._in_place = self._identity or not (keep_Z or self.activation.backward_reads_Z)
        if storage is None:
            W = np.zeros((self.n_out, self.n_in), dtype=self.dtype)
            b = np.zeros((self.n_out, 1), dtype=self.dtype)
            storage = (W, b, np.zeros_like(W), np.zeros_like(b))
        self.W, self.b, self.dW, self.db = storage
        self._buffers: dict[int, _Buffers] = {}
        self._A_prev: np.ndarray | None = None
        self._current: _Buffers | None = None

    def buffers(self, n: int) -> _Buffers:
        """The work buffers for batch size n, allocated on first use (oldest size evicted)."""
        found = self._buffers.get(n)
        if found is None:
            if len(self._buffers) >= MAX_CACHED_BATCH_SIZES:
                del self._buffers[next(iter(self._buffers))]
            Z = np.empty((self.n_out, n), dtype=self.dtype)
            A = Z if self._in_place else np.empty_like(Z)
            dA_prev = np.empty((self.n_in, n), dtype=self.dtype) if self.input_grad else None
            found = self._buffers[n] = _Buffers(Z, A, dA_prev)
        return found

    def forward(self, A_prev: np.ndarray) -> np.ndarray:
        """Compute and return A (a work buffer); A_prev is kept (not copied) for backward."""
        buf = self.buffers(A_prev.shape[1])
        np.dot(self.W, A_prev, out=buf.Z)
        np.add(buf.Z, self.b, out=buf.Z)
        if not self._identity:
            self.activation.forward(buf.Z, out=buf.A)
        self._A_prev, self._current = A_prev, buf
        return buf.A

    @property
    def Z(self) -> np.ndarray:
        return self._current.Z

    @property
    def A(self) -> np.ndarray:
        return self._current.A

    def activation_backward(self, dA: np.ndarray) -> np.ndarray:
        """dZ from dA through this layer's activation, in place in dA's buffer."""
        buf = self._current
        return self.activation.backward(buf.Z, buf.A, dA, out=dA)

    def backward(self, dZ: np.ndarray, divide: bool = True) -> np.ndarray | None:
        """Fill self.dW, self.db from dZ and the last forward's input; return dA_prev
        (a work buffer) or None when `input_grad` is False. With divide=False the two sums
        are left undivided by n (the caller divides all gradients at once)."""
        A_prev, buf = self._A_prev, self._current
        np.dot(dZ, A_prev.T, out=self.dW)
        np.add.reduce(dZ, axis=1, keepdims=True, out=self.db)
        if divide:
            n = dZ.shape[1]
            np.divide(self.dW, n, out=self.dW)
            np.divide(self.db, n, out=self.db)
        if buf.dA_prev is None:
            return None
        return np.dot(self.W.T, dZ, out=buf.dA_prev)

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, {self.activation!r})"
