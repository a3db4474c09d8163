"""Weight initializers and `init_params`, which draws all parameters of a network.

Every scheme draws in float64 and casts once to the model's dtype, so float32 and float64
runs with the same seed start from the same numbers (up to rounding).

`rng` is either a `np.random.Generator` or the string "legacy". Legacy mode draws from the
global `np.random` stream with exactly the tutorials' expression, `np.random.randn(out, in)
* scale` (scale a NumPy or Python scalar as they write it), so after the same
`np.random.seed(...)` and the same earlier draws the arrays are equal bit for bit.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import POSITIVE, Constrained, Interval, check_keywords
from mlplab.errors import ConfigError
from mlplab.nn._registry import Named, lookup, resolve_dtype

LEGACY = "legacy"


def _standard_normal(rng, shape):
    # The global stream is the point of legacy mode (it is what the tutorials seed).
    return np.random.randn(*shape) if rng == LEGACY else rng.standard_normal(shape)  # noqa: NPY002


def _uniform(rng, limit, shape):
    if rng == LEGACY:
        return np.random.uniform(-limit, limit, size=shape)  # noqa: NPY002
    return rng.uniform(-limit, limit, size=shape)


class Initializer(Named, Constrained):
    """`init(shape, fan_in, fan_out, rng) -> float64 array`. For a dense layer the weight
    shape is (fan_out, fan_in); a bias drawn "same" uses shape (fan_out, 1) and the layer's
    fan_in. A scheme with parameters declares their rules in `constraints`."""

    name = "initializer"
    prefix = "initializer"

    def init(self, shape, fan_in: int, fan_out: int, rng) -> np.ndarray:
        raise NotImplementedError


class _ScaledNormal(Initializer):
    """N(0, std^2) drawn as standard_normal * std, std from the fans."""

    def std(self, fan_in, fan_out):
        raise NotImplementedError

    def init(self, shape, fan_in, fan_out, rng):
        return _standard_normal(rng, shape) * self.std(fan_in, fan_out)


class _ScaledUniform(Initializer):
    """U(-limit, limit), limit from the fans."""

    def limit(self, fan_in, fan_out):
        raise NotImplementedError

    def init(self, shape, fan_in, fan_out, rng):
        return _uniform(rng, self.limit(fan_in, fan_out), shape)


class HeNormal(_ScaledNormal):
    """std = sqrt(2 / fan_in) (He et al. 2015), the edenau tutorial's scheme."""

    name = "he_normal"

    def std(self, fan_in, fan_out):
        return np.sqrt(2 / fan_in)  # the tutorial's exact expression (a np.float64)


class HeUniform(_ScaledUniform):
    name = "he_uniform"

    def limit(self, fan_in, fan_out):
        return np.sqrt(6 / fan_in)


class GlorotNormal(_ScaledNormal):
    name = "glorot_normal"

    def std(self, fan_in, fan_out):
        return np.sqrt(2 / (fan_in + fan_out))


class GlorotUniform(_ScaledUniform):
    name = "glorot_uniform"

    def limit(self, fan_in, fan_out):
        return np.sqrt(6 / (fan_in + fan_out))


class LecunNormal(_ScaledNormal):
    name = "lecun_normal"

    def std(self, fan_in, fan_out):
        return np.sqrt(1 / fan_in)


class LecunUniform(_ScaledUniform):
    name = "lecun_uniform"

    def limit(self, fan_in, fan_out):
        return np.sqrt(3 / fan_in)


class Normal(_ScaledNormal):
    """N(0, std^2) with a fixed std: 0.1 is Skalski's scheme, 1.0 arask's."""

    name = "normal"
    constraints = {"std": POSITIVE}

    def __init__(self, std: float = 1.0):
        self._std = self.checked("std", std)

    def params(self):
        return {"std": self._std}

    def std(self, fan_in, fan_out):
        return self._std


class Uniform(_ScaledUniform):
    """U(-a, a) with a fixed a."""

    name = "uniform"
    constraints = {"a": POSITIVE}

    def __init__(self, a: float = 0.05):
        self.a = self.checked("a", a)

    def params(self):
        return {"a": self.a}

    def limit(self, fan_in, fan_out):
        return self.a


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times `gain` (Saxe et al. 2014): QR of a Gaussian matrix
    with the signs of R's diagonal folded into Q, so Q is uniformly distributed."""

    name = "orthogonal"
    constraints = {"gain": POSITIVE}

    def __init__(self, gain: float = 1.0):
        self.gain = self.checked("gain", gain)

    def params(self):
        return {"gain": self.gain}

    def init(self, shape, fan_in, fan_out, rng):
        rows, cols = shape[0], int(np.prod(shape[1:]))
        gaussian = _standard_normal(rng, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape)


class Constant(Initializer):
    name = "constant"
    constraints = {"value": Interval(float)}

    def __init__(self, value: float = 0.0):
        self.value = self.checked("value", value)

    def params(self):
        return {"value": self.value}

    def init(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value)


class Zeros(Constant):
    name = "zeros"

    def __init__(self):
        super().__init__(0.0)

    def params(self):
        return {}


INITIALIZERS: dict[str, type[Initializer]] = {
    "he_normal": HeNormal,
    "kaiming_normal": HeNormal,
    "he_uniform": HeUniform,
    "kaiming_uniform": HeUniform,
    "glorot_normal": GlorotNormal,
    "xavier_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform,
    "xavier_uniform": GlorotUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "normal": Normal,
    "uniform": Uniform,
    "zeros": Zeros,
    "constant": Constant,
}


def get_initializer(name: str | Initializer, **params) -> Initializer:
    """Build an initializer from its name (`get_initializer("normal", std=0.1)`); an
    `Initializer` instance is returned unchanged."""
    if isinstance(name, Initializer) and not params:
        return name
    cls = lookup(INITIALIZERS, name, "initializer")
    check_keywords(cls.__init__, params, "initializer", name)
    return cls(**params)


def init_params(sizes, weight_init="he_normal", bias_init="zeros", rng=None,
                dtype="float64") -> list[np.ndarray]:
    """Draw [W1, b1, W2, b2, ...] for layer sizes [n0, n1, ...], in that order.

    `bias_init="same"` draws each bias from the weight scheme with the layer's fan_in (as
    the tutorials do); otherwise it names an initializer (or is one). `rng` is a
    `np.random.Generator`, an int seed, None (seed 0) or "legacy" (the global stream).
    """
    dtype = resolve_dtype(dtype)
    if isinstance(rng, str) and rng != LEGACY:
        raise ConfigError(f"rng: unknown rng {rng!r}; valid choices: a np.random.Generator, "
                          f"an int seed, {LEGACY}")
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        rng = np.random.default_rng(0 if rng is None else int(rng))
    elif rng != LEGACY and not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng: invalid value {rng!r}; valid choices: a np.random.Generator, "
                          f"an int seed, {LEGACY}")
    weights = get_initializer(weight_init)
    biases = weights if bias_init == "same" else get_initializer(bias_init)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        params.append(weights.init((fan_out, fan_in), fan_in, fan_out, rng).astype(dtype))
        params.append(biases.init((fan_out, 1), fan_in, fan_out, rng).astype(dtype))
    return params
