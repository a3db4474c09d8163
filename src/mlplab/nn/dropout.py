"""Inverted dropout after a hidden layer's activation, and the stream its masks come from.

While training each unit of each sample is kept with probability 1 - rate and scaled by
1 / (1 - rate), so the expected activation is unchanged and evaluation (no dropout at
all) needs no rescaling. The masks come from one NumPy Generator per model, seeded from
the run's seed; its state is part of the model's state dict (`dropout_rng`), so a resumed
fit draws the masks the uninterrupted one would have drawn.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import AnyOf, Interval, ListOf, fail

RATE = Interval(float, 0, 1)  # 1 would drop every unit
RATES = AnyOf(RATE, ListOf(RATE, example="[0.2, 0.5]"))
STREAM = 2  # the model's dropout stream is default_rng([seed, STREAM]); shuffling uses 1


def dropout_rates(dropout, n_hidden: int, key: str = "architecture.dropout") -> list[float]:
    """One rate per hidden layer from a single rate or a list of them."""
    if isinstance(dropout, list | tuple):
        if len(dropout) != n_hidden:
            fail(key, list(dropout), f"one rate per hidden layer ({n_hidden}) or a single rate")
        return [float(r) for r in dropout]
    return [float(dropout)] * n_hidden


def rng_to_array(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 Generator's state as 6 uint64 words (an .npz-ready array)."""
    state = rng.bit_generator.state
    words = []
    for value in (state["state"]["state"], state["state"]["inc"]):
        words += [value & 0xFFFF_FFFF_FFFF_FFFF, value >> 64]
    words += [state["has_uint32"], state["uinteger"]]
    return np.array(words, dtype=np.uint64)


def rng_from_array(rng: np.random.Generator, words: np.ndarray) -> None:
    """Set `rng` to the state `rng_to_array` wrote."""
    w = [int(x) for x in np.asarray(words, dtype=np.uint64)]
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": w[0] | (w[1] << 64), "inc": w[2] | (w[3] << 64)},
                               "has_uint32": w[4], "uinteger": w[5]}


class Dropout:
    """Inverted dropout of one layer's activations. `frozen` (for gradient checks) reuses
    the last mask instead of drawing a new one."""

    def __init__(self, rate: float, n_units: int, rng: np.random.Generator, dtype):
        self.rate, self.n_units, self.rng = float(rate), n_units, rng
        self.scale = 1.0 / (1.0 - self.rate)
        self.dtype = np.dtype(dtype)
        self.frozen = False
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.mask: np.ndarray | None = None

    def forward(self, A: np.ndarray) -> np.ndarray:
        """A * mask in a reused buffer (A itself stays intact: activations' backward may
        read it)."""
        n = A.shape[1]
        found = self._buffers.get(n)
        if found is None:
            if len(self._buffers) >= 4:
                del self._buffers[next(iter(self._buffers))]
            found = self._buffers[n] = (np.empty_like(A), np.empty_like(A))
        mask, out = found
        if not (self.frozen and self.mask is mask):
            self.rng.random(dtype=self.dtype, out=mask)
            np.greater_equal(mask, self.rate, out=mask)  # 1.0 kept, 0.0 dropped
            mask *= self.scale
        self.mask = mask
        return np.multiply(A, mask, out=out)

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """The gradient through the mask, in place."""
        dA *= self.mask
        return dA
