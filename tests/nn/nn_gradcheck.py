"""Central finite differences, the independent oracle of the engine's gradient tests."""

from __future__ import annotations

import numpy as np


def numeric_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x for a scalar function f() of the array x (perturbed in place, restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + eps
        up = f()
        x[idx] = saved - eps
        down = f()
        x[idx] = saved
        grad[idx] = (up - down) / (2 * eps)
    return grad


def assert_close(actual, expected, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
