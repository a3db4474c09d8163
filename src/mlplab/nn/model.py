"""The multilayer perceptron: a stack of `Dense` layers with a loss on top.

A training step is `forward(X)`, `backward(Y)` (returns the gradients, in the order of
`params`), `optimizer.step(grads)`; `train_step` does the three in one call. Arrays are
(features, samples) and must already have the model's dtype for `train_step` (it skips all
checks to keep per-step overhead low on small networks); `forward`/`backward` convert.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import Interval
from mlplab.errors import ConfigError, DataError, choices
from mlplab.nn._registry import resolve_dtype
from mlplab.nn.activations import Activation, get_activation
from mlplab.nn.initializers import init_params
from mlplab.nn.layers import Dense
from mlplab.nn.losses import Loss, check_output_activation, get_loss

LAYER_SIZE = Interval(int, 1)  # units of a layer (the config's architecture.hidden too)


def _check_sizes(sizes) -> list[int]:
    ok = isinstance(sizes, list | tuple) and len(sizes) >= 2 and all(
        LAYER_SIZE.accepts(s) for s in sizes)
    if not ok:
        raise ConfigError(f"sizes: invalid layer sizes {sizes!r}; must be a list of at least "
                          "two positive integers (inputs, hidden..., outputs)")
    return [int(s) for s in sizes]


def _check_output(loss: Loss, output: Activation, n_out: int) -> None:
    """Reject loss/output pairs that would silently compute something else."""
    check_output_activation(loss, output, "output_activation")
    if loss.name == "binary_cross_entropy" and n_out != 1:
        raise ConfigError(f"sizes: loss 'binary_cross_entropy' needs exactly 1 output unit, "
                          f"got {n_out}; use softmax_cross_entropy for several classes")
    if output.name == "softmax" and n_out < 2:
        raise ConfigError("output_activation: 'softmax' over 1 output unit is constant 1; "
                          "valid choices for one unit: sigmoid (binary_cross_entropy), identity")


class MLP:
    """`MLP(sizes, activations, loss, dtype, weight_init, bias_init, seed, rng)`.

    sizes: [n_inputs, hidden..., n_outputs]; activations: one name (or Activation) per
    layer; loss: a name or Loss; weight_init/bias_init: initializer names or instances
    (bias_init="same" draws biases like weights); rng: None (use `seed`), a Generator, or
    "legacy" (the global np.random stream, see `init_params`).
    """

    def __init__(self, sizes, activations, loss, dtype="float64", weight_init="he_normal",
                 bias_init="zeros", seed: int = 0, rng=None):
        self.sizes = _check_sizes(sizes)
        self.dtype = resolve_dtype(dtype)
        if isinstance(activations, str | Activation) or len(activations) != len(sizes) - 1:
            raise ConfigError(f"activations: need one activation per layer "
                              f"({len(sizes) - 1} for sizes {list(sizes)}), got {activations!r}")
        acts = [get_activation(a) for a in activations]
        self.loss_fn = get_loss(loss)
        _check_output(self.loss_fn, acts[-1], self.sizes[-1])
        self._allocate_parameters(acts)
        values = init_params(self.sizes, weight_init, bias_init,
                             seed if rng is None else rng, self.dtype)
        for param, value in zip(self.params, values, strict=True):
            param[...] = value
        self._delta: dict[int, np.ndarray] = {}
        self._X: np.ndarray | None = None

    def _allocate_parameters(self, acts: list[Activation]) -> None:
        """Build the layers with W, b, dW, db as views into two flat buffers, in the order
        of `params`. Element-wise updates can then run once over the whole flat buffer
        (optimizers detect this), which matters for small networks where the cost of a
        NumPy call, not the arithmetic, dominates."""
        shapes = [shape for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
                  for shape in ((n_out, n_in), (n_out, 1))]
        total = sum(rows * cols for rows, cols in shapes)
        self.flat_params = np.zeros(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        self.params, self.grads, offset = [], [], 0
        for rows, cols in shapes:
            end = offset + rows * cols
            self.params.append(self.flat_params[offset:end].reshape(rows, cols))
            self.grads.append(self.flat_grads[offset:end].reshape(rows, cols))
            offset = end
        self.layers = [
            Dense(n_in, n_out, act, self.dtype, input_grad=i > 0,
                  storage=(*self.params[2 * i:2 * i + 2], *self.grads[2 * i:2 * i + 2]),
                  keep_Z=i == len(acts) - 1)
            for i, (n_in, n_out, act) in
            enumerate(zip(self.sizes[:-1], self.sizes[1:], acts, strict=True))]
        self.param_names = [f"{kind}{i}" for i in range(1, len(self.layers) + 1)
                            for kind in ("W", "b")]

    # ----------------------------------------------------------------------------- passes
    @property
    def output_activation(self) -> Activation:
        return self.layers[-1].activation

    @property
    def last_output(self) -> np.ndarray:
        """The output buffer of the last forward (pre-update output after `train_step`)."""
        return self.layers[-1].A

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params)

    def _as_batch(self, X, rows: int, what: str) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[0] != rows:
            raise DataError(f"{what}: expected shape ({rows}, n_samples) in the (features, "
                            f"samples) layout, got {X.shape}")
        return X

    def forward(self, X) -> np.ndarray:
        """Output activations for a batch X (n_inputs, n); returns a reused buffer."""
        X = self._as_batch(X, self.sizes[0], "X")
        A = X
        for layer in self.layers:
            A = layer.forward(A)
        self._X = X
        return A

    def backward(self, Y) -> list[np.ndarray]:
        """Gradients of the mean loss over the last forward's batch, ordered as `params`.
        The returned arrays are reused buffers (an optimizer may overwrite them)."""
        if self._X is None:
            raise RuntimeError("MLP.backward needs a forward pass first")
        out = self.layers[-1]
        Y = self._as_batch(Y, self.sizes[-1], "Y")
        if Y.shape != out.Z.shape:
            raise DataError(f"Y: expected shape {out.Z.shape} to match the last forward, "
                            f"got {Y.shape}")
        self._backward(Y)
        return self.grads

    def _backward(self, Y: np.ndarray) -> None:
        last = self.layers[-1]
        n = Y.shape[1]
        delta = self._delta.get(n)
        if delta is None:
            delta = self._delta[n] = np.empty_like(last.Z)
        dZ = self.loss_fn.delta(last.Z, last.A, Y, activation=last.activation, out=delta)
        for i in range(len(self.layers) - 1, -1, -1):
            dA = self.layers[i].backward(dZ, divide=False)
            if dA is not None:
                dZ = self.layers[i - 1].activation_backward(dA)
        # one division of every gradient by n, after its matmul or sum, as the convention says
        np.divide(self.flat_grads, n, out=self.flat_grads)

    def train_step(self, X: np.ndarray, Y: np.ndarray, optimizer,
                   return_loss: bool = False) -> float | None:
        """forward + backward + optimizer.step on one batch, without input checks.

        X and Y must be (features, n) arrays of the model's dtype. With return_loss the
        batch loss of the forward (before the update) is returned; `last_output` also
        keeps that forward's output, e.g. for `accuracy(model.last_output, Y)`.
        """
        A = X
        for layer in self.layers:
            A = layer.forward(A)
        self._X = X
        value = None
        if return_loss:
            last = self.layers[-1]
            value = self.loss_fn.value(last.Z, last.A, Y)
        self._backward(Y)
        optimizer.step(self.grads)
        return value

    # --------------------------------------------------------------------- conveniences
    def loss(self, X, Y) -> float:
        """The loss of the current parameters on (X, Y)."""
        A = self.forward(X)
        Y = self._as_batch(Y, self.sizes[-1], "Y")
        return self.loss_fn.value(self.layers[-1].Z, A, Y)

    def predict(self, X, batch_size: int | None = None) -> np.ndarray:
        """Output activations as a new array, computed batch_size columns at a time."""
        X = self._as_batch(X, self.sizes[0], "X")
        n = X.shape[1]
        step = n if not batch_size else int(batch_size)
        result = np.empty((self.sizes[-1], n), dtype=self.dtype)
        for start in range(0, n, max(step, 1)):
            result[:, start:start + step] = self.forward(X[:, start:start + step])
        return result

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters keyed "W1", "b1", "W2", ... (np.savez-ready)."""
        return {name: p.copy() for name, p in zip(self.param_names, self.params, strict=True)}

    def load_state_dict(self, state) -> None:
        """Copy parameters in place (optimizers keep references to these arrays)."""
        missing = [k for k in self.param_names if k not in state]
        extra = [k for k in state if k not in self.param_names]
        if missing or extra:
            raise DataError(f"state_dict: keys {missing or extra} do not match this model; "
                            f"valid keys: {choices(self.param_names)}")
        for name, param in zip(self.param_names, self.params, strict=True):
            value = np.asarray(state[name])
            if value.shape != param.shape:
                raise DataError(f"state_dict: {name} has shape {value.shape}, the model "
                                f"needs {param.shape}")
            np.copyto(param, value, casting="same_kind")

    def __repr__(self) -> str:
        acts = [layer.activation.name for layer in self.layers]
        return (f"MLP(sizes={self.sizes}, activations={acts}, loss={self.loss_fn.name!r}, "
                f"dtype={self.dtype.name!r})")
