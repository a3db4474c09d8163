"""Element-wise activations, each with its backward next to its forward.

`forward(Z, out=None) -> A` and `backward(Z, A, dA, out=None) -> dZ`. `out` may be a
preallocated array of the same shape and dtype, or the input itself (`Z` for forward, `dA` for
backward) to work in place; other partial overlaps are not allowed. Backward gets both `Z`
and `A` so each derivative can use whichever is cheaper (ReLU uses `A > 0`, as the
tutorials do; sigmoid and tanh reuse `A`). Scalars stay Python floats so that float32
arrays are never upcast (NumPy 2 treats Python scalars as weak).
"""

from __future__ import annotations

import math

import numpy as np

from mlplab.constraints import NON_NEGATIVE, Constrained, check_keywords
from mlplab.nn._registry import Named, lookup


def _target(Z: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Return the array to compute into, holding a copy of Z (no copy when out is Z)."""
    if out is None:
        return Z.copy()
    if out is not Z:
        np.copyto(out, Z)
    return out


_ZEROS: dict[tuple, np.ndarray] = {}


def _zeros_like(Z: np.ndarray) -> np.ndarray:
    """A cached read-only array of zeros shaped like Z.

    np.maximum(Z, 0) with a scalar runs a slow broadcast loop (about 4x slower than with a
    full-size contiguous operand), and allocating np.zeros each call costs a memset; a
    cached array gives the fast loop and the tutorials' exact operation for free.
    """
    key = (Z.shape, Z.dtype)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= 16:  # many shapes seen (evaluation sizes): start over
            _ZEROS.clear()
        zeros = _ZEROS[key] = np.zeros(Z.shape, dtype=Z.dtype)
        zeros.flags.writeable = False
    return zeros


class Activation(Named, Constrained):
    """Base class; `name` is the registry key, `params()` the constructor arguments and
    `constraints` their rules. `backward_reads_Z` says whether backward needs Z; when it
    does not, a layer may let A overwrite Z (smaller working set, which keeps small
    networks in cache)."""

    name = "activation"
    prefix = "activation"
    backward_reads_Z = False

    def forward(self, Z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, Z: np.ndarray, A: np.ndarray, dA: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


class _WithAlpha(Activation):
    """An activation with one non-negative shape parameter `alpha`."""

    default_alpha = 0.0
    constraints = {"alpha": NON_NEGATIVE}

    def __init__(self, alpha: float | None = None):
        self.alpha = self.checked("alpha", self.default_alpha if alpha is None else alpha)

    def params(self):
        return {"alpha": self.alpha}


class Identity(Activation):
    """A = Z. Models skip the copy and use Z's buffer as A (see `Dense`)."""

    name = "identity"

    def forward(self, Z, out=None):
        return Z if out is None else _target(Z, out)

    def backward(self, Z, A, dA, out=None):
        return dA if out is None else _target(dA, out)


class ReLU(Activation):
    """max(Z, 0); the derivative is taken from the output (A > 0), so it is 0 at Z = 0."""

    name = "relu"

    def forward(self, Z, out=None):
        return np.maximum(Z, _zeros_like(Z), out=out)

    def backward(self, Z, A, dA, out=None):
        # dA * 1.0 or dA * 0.0: the same numbers as the tutorials' dA * max(sign(A), 0).
        # (Read as uint8, the mask takes a faster mixed-type loop than as bool.)
        return np.multiply(dA, (A > 0).view(np.uint8), out=out)


class LeakyReLU(_WithAlpha):
    """Z for Z > 0, alpha*Z otherwise (slope alpha at Z = 0, as PyTorch); alpha 0.01."""

    name = "leaky_relu"
    backward_reads_Z = True
    default_alpha = 0.01

    def forward(self, Z, out=None):
        negative = Z <= 0
        out = _target(Z, out)
        return np.multiply(out, self.alpha, out=out, where=negative)

    def backward(self, Z, A, dA, out=None):
        negative = Z <= 0
        out = _target(dA, out)
        return np.multiply(out, self.alpha, out=out, where=negative)


class ELU(_WithAlpha):
    """Z for Z > 0, alpha*(exp(Z) - 1) otherwise (alpha 1.0); the derivative there is
    A + alpha."""

    name = "elu"
    backward_reads_Z = True
    default_alpha = 1.0

    def forward(self, Z, out=None):
        negative = Z <= 0
        out = _target(Z, out)
        np.expm1(out, out=out, where=negative)  # expm1 keeps precision near 0
        return np.multiply(out, self.alpha, out=out, where=negative)

    def backward(self, Z, A, dA, out=None):
        negative = Z <= 0
        slope = np.add(A, self.alpha)
        out = _target(dA, out)
        return np.multiply(out, slope, out=out, where=negative)


class GELU(Activation):
    """GELU with the tanh approximation (Hendrycks & Gimpel; PyTorch `approximate="tanh"`):

    A = 0.5 * Z * (1 + tanh(u)),  u = sqrt(2/pi) * (Z + 0.044715 * Z**3).
    It is not the exact erf form; the two differ by less than 1e-3.
    """

    name = "gelu"
    backward_reads_Z = True
    _C = math.sqrt(2.0 / math.pi)
    _K = 0.044715

    def _tanh_u(self, Z):
        u = Z * Z
        u *= self._K
        u += 1.0
        u *= Z
        u *= self._C
        return np.tanh(u, out=u)

    def forward(self, Z, out=None):
        t = self._tanh_u(Z)
        t += 1.0
        t *= 0.5
        return np.multiply(Z, t, out=out)

    def backward(self, Z, A, dA, out=None):
        t = self._tanh_u(Z)
        # d/dZ = 0.5*(1 + t) + 0.5*Z*(1 - t^2) * C * (1 + 3K Z^2)
        inner = Z * Z
        inner *= 3.0 * self._K
        inner += 1.0
        inner *= self._C
        inner *= Z
        sech2 = np.multiply(t, t)
        np.subtract(1.0, sech2, out=sech2)
        inner *= sech2
        t += 1.0
        t += inner
        t *= 0.5
        return np.multiply(dA, t, out=out)


class Sigmoid(Activation):
    """1 / (1 + exp(-Z)); overflow of exp(-Z) for very negative Z gives exactly 0, which is
    the right limit, so the warning is silenced rather than the formula changed."""

    name = "sigmoid"

    def forward(self, Z, out=None):
        out = np.negative(Z, out=out)
        with np.errstate(over="ignore"):
            np.exp(out, out=out)
        out += 1.0
        return np.divide(1.0, out, out=out)

    def backward(self, Z, A, dA, out=None):
        slope = np.subtract(1.0, A)
        slope *= A
        return np.multiply(dA, slope, out=out)


class Tanh(Activation):
    name = "tanh"

    def forward(self, Z, out=None):
        return np.tanh(Z, out=out)

    def backward(self, Z, A, dA, out=None):
        slope = np.multiply(A, A)
        np.subtract(1.0, slope, out=slope)
        return np.multiply(dA, slope, out=out)


class Softplus(Activation):
    """log(1 + exp(Z)) computed as max(Z, 0) + log1p(exp(-|Z|)), finite for any Z.

    Unlike PyTorch it has no `threshold` shortcut (PyTorch returns Z for Z > 20); the two
    differ by less than 2.1e-9 there."""

    name = "softplus"
    backward_reads_Z = True

    def forward(self, Z, out=None):
        soft = np.abs(Z)
        np.negative(soft, out=soft)
        np.exp(soft, out=soft)
        np.log1p(soft, out=soft)
        out = np.maximum(Z, 0, out=out)
        out += soft
        return out

    def backward(self, Z, A, dA, out=None):
        return np.multiply(dA, SIGMOID.forward(Z), out=out)


class Softmax(Activation):
    """Softmax over axis 0 (the feature axis of the (features, samples) layout); the column
    maximum is subtracted first so exp never overflows."""

    name = "softmax"

    def forward(self, Z, out=None):
        shift = Z.max(axis=0, keepdims=True)
        out = np.subtract(Z, shift, out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=0, keepdims=True)
        return out

    def backward(self, Z, A, dA, out=None):
        # Jacobian-vector product: dZ = A * (dA - sum_k dA_k A_k), column by column.
        dot = np.multiply(dA, A).sum(axis=0, keepdims=True)
        out = np.subtract(dA, dot, out=out)
        out *= A
        return out


SIGMOID = Sigmoid()

ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity,
    "linear": Identity,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softplus": Softplus,
    "softmax": Softmax,
}


def get_activation(name: str | Activation, **params) -> Activation:
    """Build an activation from its name (`get_activation("leaky_relu", alpha=0.1)`);
    an `Activation` instance is returned unchanged."""
    if isinstance(name, Activation) and not params:
        return name
    cls = lookup(ACTIVATIONS, name, "activation")
    check_keywords(cls.__init__, params, "activation", name)
    return cls(**params)
