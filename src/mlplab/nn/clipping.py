"""Gradient clipping, in place, as PyTorch's `clip_grad_norm_` and `clip_grad_value_`."""

from __future__ import annotations

import math

import numpy as np


def global_norm(grads: list[np.ndarray]) -> float:
    """sqrt of the sum of squares of all gradient entries (accumulated in float64)."""
    total = 0.0
    for g in grads:
        flat = g.reshape(-1)
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_grad_norm(grads: list[np.ndarray], max_norm: float) -> float:
    """Scale all gradients by max_norm / (norm + 1e-6) when that is below 1 (PyTorch's
    formula, the 1e-6 guards a zero norm); returns the norm before clipping."""
    norm = global_norm(grads)
    scale = max_norm / (norm + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= scale
    return norm


def clip_grad_value(grads: list[np.ndarray], max_value: float) -> None:
    """Clamp every gradient entry to [-max_value, max_value]."""
    for g in grads:
        np.clip(g, -max_value, max_value, out=g)
