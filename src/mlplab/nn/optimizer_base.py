"""The optimizer base class: clipping, weight decay, L1, max-norm, step counting, state and
checkpoints.

The concrete update rules live in `optimizers.py`; this module holds what they share,
including the flat-buffer fast path (see `Optimizer`).
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import NON_NEGATIVE, POSITIVE, Choice, Constrained, Nullable, fail
from mlplab.errors import DataError, choices
from mlplab.nn.clipping import clip_grad_norm, clip_grad_value

LEARNING_RATE = POSITIVE  # the optimizer's lr, and the base rate of a schedule


def flat_base(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D buffer that `arrays` tile in order, if they are consecutive C-contiguous
    views covering all of it (as `MLP.params` and `MLP.grads` are), else None."""
    base = arrays[0].base if arrays else None
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    address = base.ctypes.data
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or a.ctypes.data != address:
            return None
        address += a.nbytes
    return base if address == base.ctypes.data + base.nbytes else None


class Optimizer(Constrained):
    """Base class: holds params, lr (settable, e.g. by a schedule), step count `t`, and one
    state array per param for each name in `slots` (`state[slot][i]`).

    When the params tile one flat buffer (`MLP.params` do), every element-wise operation
    runs once over that buffer instead of once per param: the same numbers, far fewer NumPy
    calls, which is most of the cost of a step for small networks. State is then one flat
    array per slot too, with per-param views in `state`.

    `constraints` holds the rules of the arguments every optimizer takes; each subclass
    adds its own.
    """

    name = "optimizer"
    prefix = "optimizer"
    constraints = {"lr": LEARNING_RATE, "weight_decay": NON_NEGATIVE,
                   "clip_norm": Nullable(POSITIVE), "clip_value": Nullable(POSITIVE),
                   "l1": NON_NEGATIVE, "decay_biases": Choice((True, False)),
                   "max_norm": Nullable(POSITIVE)}
    slots: tuple[str, ...] = ()
    decoupled_weight_decay = False

    def __init__(self, params, lr: float, *, weight_decay: float = 0.0,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 l1: float = 0.0, decay_biases: bool = True, max_norm: float | None = None,
                 param_names: list[str] | None = None):
        """l1: the L1 penalty's weight (its subgradient l1 * sign(p) joins the gradient);
        decay_biases=False exempts every parameter but the dense weight matrices (biases,
        normalization gains and biases) from weight decay and L1; max_norm rescales each
        row of a weight matrix (a unit's incoming weights) to at most that L2 norm after
        every step. Weight matrices are the params named W<k> (`MLP.param_names`); without
        names every param counts as one."""
        self.params = list(params)
        self.lr = lr
        self.weight_decay = self.checked("weight_decay", weight_decay)
        self.clip_norm = self.checked("clip_norm", clip_norm)
        self.clip_value = self.checked("clip_value", clip_value)
        self.l1 = self.checked("l1", l1)
        self.decay_biases = self.checked("decay_biases", decay_biases)
        self.max_norm = self.checked("max_norm", max_norm)
        named = param_names is not None
        self.param_names = ([str(i) for i in range(len(self.params))]
                            if param_names is None else list(param_names))
        if len(self.param_names) != len(self.params):
            fail("optimizer.param_names", param_names,
                 f"one name per parameter ({len(self.params)})")
        weights = [not named or name.startswith("W") for name in self.param_names]
        self._weight_params = [p for p, w in zip(self.params, weights, strict=True) if w]
        self.t = 0
        flat = flat_base(self.params)
        # "units" are what the update runs over: the flat buffer, or each param
        self._units = [flat] if flat is not None else self.params
        self._penalized = self._penalized_parts(flat, weights)
        self._unit_state = {slot: [np.zeros_like(u) for u in self._units] for slot in self.slots}
        self._scratch = [np.empty_like(u) for u in self._units]
        if flat is None:
            self.state = self._unit_state
        else:
            self.state = {slot: self._tile(units[0]) for slot, units in self._unit_state.items()}
            self._grad_copy = np.empty_like(flat)
            self._grad_views = self._tile(self._grad_copy)
        self._known_grads: tuple[list, list] | None = None

    def _tile(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of a flat buffer shaped like the params, in order."""
        views, offset = [], 0
        for p in self.params:
            views.append(flat[offset:offset + p.size].reshape(p.shape))
            offset += p.size
        return views

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = self.checked("lr", value)

    def _grad_units(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        """The gradients laid out like the units (copied into one buffer if they are not
        already a flat buffer; the answer for a given list object is cached)."""
        if len(self._units) == len(self.params):
            return grads
        known = self._known_grads
        if known is not None and known[0] is grads and grads[0].base is known[1][0]:
            return known[1]
        flat = flat_base(grads)
        if flat is not None:
            self._known_grads = (grads, [flat])
            return [flat]
        for view, g in zip(self._grad_views, grads, strict=True):
            np.copyto(view, g)
        return [self._grad_copy]

    def step(self, grads: list[np.ndarray]) -> None:
        """Update every param in place from its gradient (the grads are overwritten)."""
        if len(grads) != len(self.params):
            raise ValueError(f"{self.name}.step: got {len(grads)} gradients for "
                             f"{len(self.params)} params")
        units = self._grad_units(grads)
        if self.clip_value is not None:
            clip_grad_value(units, self.clip_value)
        if self.clip_norm is not None:
            clip_grad_norm(units, self.clip_norm)
        self.t += 1
        lr, wd, l1 = self._lr, self.weight_decay, self.l1
        for i, (p, g, scratch) in enumerate(zip(self._units, units, self._scratch, strict=True)):
            if wd or l1:
                self._penalize(self._penalized[i], p, g, scratch, lr)
            self._update(i, p, g, scratch, lr)
        if self.max_norm is not None:
            self._apply_max_norm()

    def _penalized_parts(self, flat, weights: list[bool]) -> list[list[slice]]:
        """Per unit, the slices weight decay and L1 apply to: all of it when biases decay
        too, else the weight matrices' ranges of the flat buffer (or the weight params)."""
        if self.decay_biases:
            return [[slice(None)] for _ in self._units]
        if flat is None:
            return [[slice(None)] if w else [] for w in weights]
        parts, offset = [], 0
        for p, w in zip(self.params, weights, strict=True):
            if w:
                parts.append(slice(offset, offset + p.size))
            offset += p.size
        return [parts]

    def _penalize(self, parts, p, g, scratch, lr) -> None:
        """Weight decay (L2 into g, or decoupled: p shrinks) and L1 (l1 * sign(p) into g)."""
        wd, l1 = self.weight_decay, self.l1
        for part in parts:
            pp, gg, ss = p[part], g[part], scratch[part]
            if wd:
                if self.decoupled_weight_decay:
                    pp *= 1.0 - lr * wd
                else:
                    np.multiply(pp, wd, out=ss)
                    gg += ss
            if l1:
                np.sign(pp, out=ss)
                ss *= l1
                gg += ss

    def _apply_max_norm(self) -> None:
        """Rescale every row of a weight matrix whose L2 norm exceeds max_norm to it."""
        limit = self.max_norm
        for W in self._weight_params:
            norms = np.sqrt(np.einsum("ij,ij->i", W, W))[:, None]
            if np.any(norms > limit):
                with np.errstate(divide="ignore"):
                    W *= np.where(norms > limit, limit / norms, 1.0).astype(W.dtype, copy=False)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray, scratch: np.ndarray,
                lr: float) -> None:
        """Update unit i (a param, or the flat buffer of all params) in place."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """{"step": int, "lr": float, "<slot>.<param name>": array, ...} (np.savez-ready)."""
        out: dict = {"step": self.t, "lr": self._lr}
        for slot, arrays in self.state.items():
            for name, array in zip(self.param_names, arrays, strict=True):
                out[f"{slot}.{name}"] = array.copy()
        return out

    def load_state_dict(self, state) -> None:
        expected = {"step", "lr"} | {f"{s}.{n}" for s in self.state for n in self.param_names}
        if set(state) != expected:
            raise DataError(f"optimizer state: keys {sorted(set(state) ^ expected)} do not match "
                            f"this {self.name} optimizer; valid keys: {choices(expected)}")
        for slot, arrays in self.state.items():
            for name, array in zip(self.param_names, arrays, strict=True):
                value = np.asarray(state[f"{slot}.{name}"])
                if value.shape != array.shape:
                    raise DataError(f"optimizer state: {slot}.{name} has shape {value.shape}, "
                                    f"expected {array.shape}")
                np.copyto(array, value, casting="same_kind")
        self.t = int(state["step"])
        self.lr = float(state["lr"])

    def __repr__(self) -> str:
        return f"{self.name}(lr={self._lr}, weight_decay={self.weight_decay})"
