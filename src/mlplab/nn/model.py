"""The multilayer perceptron: a stack of `Dense` layers with a loss on top.

A training step is `forward(X, training=True)`, `backward(Y)` (returns the gradients, in
the order of `params`), `optimizer.step(grads)`; `train_step` does the three in one call.
Arrays are (features, samples) and must already have the model's dtype for `train_step` (it
skips all checks to keep per-step overhead low on small networks); `forward`/`backward`
convert.

Each hidden layer may be followed by a normalization (`norm`: batch or layer, between the
dense layer and its activation, see `normalization`) and by inverted dropout after the
activation (`dropout`). Both act only in training: `forward` and `predict` evaluate (no
dropout, batch norm on its running statistics) unless told `training=True`; `train_step`
always trains. Without them the layers run exactly as before, operation for operation.
"""

from __future__ import annotations

import numpy as np

from mlplab.constraints import Constrained, Interval
from mlplab.errors import ConfigError, DataError, choices
from mlplab.nn._registry import resolve_dtype
from mlplab.nn.activations import Activation, get_activation
from mlplab.nn.dropout import RATES, STREAM, Dropout, dropout_rates, rng_from_array, rng_to_array
from mlplab.nn.initializers import init_params
from mlplab.nn.layers import Dense
from mlplab.nn.losses import LABEL_SMOOTHING, Loss, check_output_activation, get_loss
from mlplab.nn.normalization import NORM, NORM_EPS, NORM_MOMENTUM, BatchNorm, LayerNorm

LAYER_SIZE = Interval(int, 1)  # units of a layer (the config's architecture.hidden too)
DROPOUT_RNG = "dropout_rng"  # the state-dict entry of the dropout stream


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
    if output.name == "softmax" and n_out < 2:
        raise ConfigError("output_activation: 'softmax' over 1 output unit is constant 1; "
                          "valid choices for one unit: sigmoid (binary_cross_entropy), identity")


class MLP(Constrained):
    """`MLP(sizes, activations, loss, dtype, weight_init, bias_init, seed, rng, ...)`.

    sizes: [n_inputs, hidden..., n_outputs]; activations: one name (or Activation) per
    layer; loss: a name or Loss; weight_init/bias_init: initializer names or instances
    (bias_init="same" draws biases like weights); rng: None (use `seed`), a Generator, or
    "legacy" (the global np.random stream, see `init_params`).
    dropout: a rate for every hidden layer or a list of one per hidden layer (0: none),
    masks drawn from `default_rng([seed, 2])`; norm: "none", "batch" or "layer" after each
    hidden dense layer, with `norm_momentum` (batch norm's running averages) and
    `norm_eps`; label_smoothing: for the cross-entropy losses (see `losses`).
    """

    prefix = "architecture"
    constraints = {"dropout": RATES, "norm": NORM, "norm_momentum": NORM_MOMENTUM,
                   "norm_eps": NORM_EPS, "label_smoothing": LABEL_SMOOTHING}

    def __init__(self, sizes, activations, loss, dtype="float64", weight_init="he_normal",
                 bias_init="zeros", seed: int = 0, rng=None, *, dropout=0.0, norm="none",
                 norm_momentum: float = 0.1, norm_eps: float = 1e-5,
                 label_smoothing: float = 0.0):
        self.sizes = _check_sizes(sizes)
        self.dtype = resolve_dtype(dtype)
        if isinstance(activations, str | Activation) or len(activations) != len(sizes) - 1:
            raise ConfigError(f"activations: need one activation per layer "
                              f"({len(sizes) - 1} for sizes {list(sizes)}), got {activations!r}")
        acts = [get_activation(a) for a in activations]
        smoothing = self.checked("label_smoothing", label_smoothing)
        self.loss_fn = get_loss(loss) if not smoothing else get_loss(loss, smoothing=smoothing)
        _check_output(self.loss_fn, acts[-1], self.sizes[-1])
        self.norm = self.checked("norm", norm)
        self.dropout = dropout_rates(self.checked("dropout", dropout), len(self.sizes) - 2)
        self.activations = acts
        self._allocate_parameters(acts)
        values = init_params(self.sizes, weight_init, bias_init,
                             seed if rng is None else rng, self.dtype)
        for param, value in zip(self.params, values, strict=False):  # dense ones first
            param[...] = value
        self._build_hidden_extras(acts, seed, self.checked("norm_momentum", norm_momentum),
                                  self.checked("norm_eps", norm_eps))
        self._delta: dict[int, np.ndarray] = {}
        self._X: np.ndarray | None = None

    def _allocate_parameters(self, acts: list[Activation]) -> None:
        """Build the layers with W, b, dW, db as views into two flat buffers, in the order
        of `params`. Element-wise updates can then run once over the whole flat buffer
        (optimizers detect this), which matters for small networks where the cost of a
        NumPy call, not the arithmetic, dominates."""
        shapes = [shape for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
                  for shape in ((n_out, n_in), (n_out, 1))]
        normed = self.sizes[1:-1] if self.norm != "none" else []
        shapes += [(units, 1) for units in normed for _ in ("gain", "bias")]
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
            Dense(n_in, n_out, "identity" if normed and i < len(normed) else act, self.dtype,
                  input_grad=i > 0,
                  storage=(*self.params[2 * i:2 * i + 2], *self.grads[2 * i:2 * i + 2]),
                  keep_Z=i == len(acts) - 1)
            for i, (n_in, n_out, act) in
            enumerate(zip(self.sizes[:-1], self.sizes[1:], acts, strict=True))]
        self.param_names = [f"{kind}{i}" for i in range(1, len(self.layers) + 1)
                            for kind in ("W", "b")]
        self.param_names += [f"norm{i}_{kind}" for i in range(1, len(normed) + 1)
                             for kind in ("gain", "bias")]

    def _build_hidden_extras(self, acts, seed, momentum: float, eps: float) -> None:
        """The norm and dropout of each hidden layer (None where there is none), and the
        buffers that are state but not parameters (batch norm's running statistics)."""
        n_hidden, L = len(self.sizes) - 2, len(self.layers)
        self.buffers: dict[str, np.ndarray] = {}
        self.norms: list = [None] * n_hidden
        for i in range(n_hidden if self.norm != "none" else 0):
            units, k = self.sizes[i + 1], 2 * L + 2 * i
            self.params[k][...] = 1  # gain 1, bias 0: the identity map to start with
            storage = (*self.params[k:k + 2], *self.grads[k:k + 2])
            if self.norm == "batch":
                mean = self.buffers[f"norm{i + 1}_running_mean"] = np.zeros(
                    (units, 1), dtype=self.dtype)
                var = self.buffers[f"norm{i + 1}_running_var"] = np.ones_like(mean)
                self.norms[i] = BatchNorm(units, acts[i], storage, (mean, var), momentum,
                                          eps, self.dtype)
            else:
                self.norms[i] = LayerNorm(units, acts[i], storage, eps, self.dtype)
        self.dropout_rng = (np.random.default_rng([seed, STREAM])
                            if any(self.dropout) else None)
        self.dropouts = [Dropout(rate, units, self.dropout_rng, self.dtype) if rate else None
                         for rate, units in zip(self.dropout, self.sizes[1:-1], strict=True)]
        # the plain path (no norm, no dropout) runs the layers exactly as before
        self._plain = self.norm == "none" and self.dropout_rng is None

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

    def forward(self, X, training: bool = False) -> np.ndarray:
        """Output activations for a batch X (n_inputs, n); returns a reused buffer.
        training=True runs dropout and batch norm's batch statistics (a training step's
        forward); the default evaluates."""
        X = self._as_batch(X, self.sizes[0], "X")
        A = self._forward(X, training)
        self._X = X
        return A

    def _forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        A = X
        if self._plain:
            for layer in self.layers:
                A = layer.forward(A)
            return A
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            A = layer.forward(A)
            if i < last:
                norm, dropout = self.norms[i], self.dropouts[i]
                if norm is not None:
                    A = norm.forward(A, training)
                if dropout is not None and training:
                    A = dropout.forward(A)
        self._training = training
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
        plain = self._plain
        for i in range(len(self.layers) - 1, -1, -1):
            dA = self.layers[i].backward(dZ, divide=False)
            if dA is not None:
                dZ = (self.layers[i - 1].activation_backward(dA) if plain
                      else self._hidden_backward(i - 1, dA))
        # one division of every gradient by n, after its matmul or sum, as the convention says
        np.divide(self.flat_grads, n, out=self.flat_grads)

    def _hidden_backward(self, i: int, dA: np.ndarray) -> np.ndarray:
        """dZ of hidden dense layer i from the gradient at its output (after dropout)."""
        dropout, norm = self.dropouts[i], self.norms[i]
        if dropout is not None and self._training:
            dA = dropout.backward(dA)
        if norm is not None:
            return norm.backward(dA)
        return self.layers[i].activation_backward(dA)

    def train_step(self, X: np.ndarray, Y: np.ndarray, optimizer,
                   return_loss: bool = False) -> float | None:
        """forward (training) + backward + optimizer.step on one batch, without input checks.

        X and Y must be (features, n) arrays of the model's dtype. With return_loss the
        batch loss of the forward (before the update) is returned; `last_output` also
        keeps that forward's output, e.g. for `accuracy(model.last_output, Y)`.
        """
        if self._plain:
            A = X
            for layer in self.layers:
                A = layer.forward(A)
        else:
            self._forward(X, True)
        self._X = X
        value = None
        if return_loss:
            last = self.layers[-1]
            value = self.loss_fn.value(last.Z, last.A, Y)
        self._backward(Y)
        optimizer.step(self.grads)
        return value

    # --------------------------------------------------------------------- conveniences
    def loss(self, X, Y, training: bool = False) -> float:
        """The loss of the current parameters on (X, Y) (evaluated, unless `training`)."""
        A = self.forward(X, training)
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

    @property
    def state_names(self) -> list[str]:
        """The keys of `state_dict`: the parameters, then the buffers (batch norm's running
        statistics), then the dropout stream's state."""
        return [*self.param_names, *self.buffers, *([DROPOUT_RNG] if self.dropout_rng else [])]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters keyed "W1", "b1", "W2", ..., "norm1_gain", ..., the
        buffers and the dropout stream (np.savez-ready): everything a resumed fit needs."""
        state = {name: p.copy() for name, p in zip(self.param_names, self.params, strict=True)}
        state.update({name: b.copy() for name, b in self.buffers.items()})
        if self.dropout_rng is not None:
            state[DROPOUT_RNG] = rng_to_array(self.dropout_rng)
        return state

    def load_state_dict(self, state) -> None:
        """Copy parameters and buffers in place (optimizers keep references to these
        arrays) and restore the dropout stream."""
        names = self.state_names
        missing = [k for k in names if k not in state]
        extra = [k for k in state if k not in names]
        if missing or extra:
            raise DataError(f"state_dict: keys {missing or extra} do not match this model; "
                            f"valid keys: {choices(names)}")
        targets = dict(zip(self.param_names, self.params, strict=True)) | self.buffers
        for name, target in targets.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise DataError(f"state_dict: {name} has shape {value.shape}, the model "
                                f"needs {target.shape}")
            np.copyto(target, value, casting="same_kind")
        if self.dropout_rng is not None:
            rng_from_array(self.dropout_rng, state[DROPOUT_RNG])

    def __repr__(self) -> str:
        acts = [a.name for a in self.activations]
        return (f"MLP(sizes={self.sizes}, activations={acts}, loss={self.loss_fn.name!r}, "
                f"dtype={self.dtype.name!r})")
