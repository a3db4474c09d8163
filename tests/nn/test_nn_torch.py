"""PyTorch as an oracle (skipped when torch is not installed): the same network, weights and
data in float64; gradients and 5 optimizer steps must agree to 1e-6."""

import numpy as np
import pytest

from mlplab.nn import MLP, OPTIMIZERS, get_optimizer

torch = pytest.importorskip("torch")
F = torch.nn.functional

N = 16


def _torch_activation(name, Z):
    return {
        "identity": lambda z: z,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "elu": F.elu,
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softplus": F.softplus,
        "softmax": lambda z: torch.softmax(z, dim=0),
    }[name](Z)


def _torch_loss(name, Z, A, Y):
    if name == "mse":
        return F.mse_loss(A, Y)
    if name == "mse_half":
        return 0.5 * ((A - Y) ** 2).sum() / Y.shape[1]
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(Z, Y)
    if name == "softmax_cross_entropy":
        return F.cross_entropy(Z.T, Y.argmax(dim=0))
    raise AssertionError(name)


def _torch_forward(weights, acts, loss, X, Y):
    A = torch.from_numpy(X)
    for i, act in enumerate(acts):
        Z = weights[2 * i] @ A + weights[2 * i + 1]
        A = _torch_activation(act, Z)
    return _torch_loss(loss, Z, A, torch.from_numpy(Y))


COMBOS = [
    ([4, 8, 6, 3], ["relu", "relu", "softmax"], "softmax_cross_entropy", "onehot"),
    ([4, 8, 6, 1], ["tanh", "gelu", "sigmoid"], "binary_cross_entropy", "binary"),
    ([4, 8, 6, 2], ["elu", "leaky_relu", "identity"], "mse", "real"),
    ([4, 8, 2], ["softplus", "tanh"], "mse_half", "real"),
    ([4, 8, 3], ["sigmoid", "softmax"], "mse", "onehot"),
]


def _setup(sizes, acts, loss, kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(sizes[0], N))
    if kind == "onehot":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], N)].T.copy()
    elif kind == "binary":
        Y = rng.integers(0, 2, (1, N)).astype(float)
    else:
        Y = rng.normal(size=(sizes[-1], N))
    model = MLP(sizes, acts, loss, weight_init="glorot_uniform", bias_init="same", seed=seed)
    weights = [torch.tensor(p, requires_grad=True) for p in model.params]
    return model, weights, X, Y


@pytest.mark.parametrize(("sizes", "acts", "loss", "kind"), COMBOS)
def test_gradients_match_torch_autograd(sizes, acts, loss, kind):
    model, weights, X, Y = _setup(sizes, acts, loss, kind)
    value = _torch_forward(weights, acts, loss, X, Y)
    value.backward()
    assert model.loss(X, Y) == pytest.approx(value.item(), rel=1e-12)
    for grad, w in zip(model.backward(Y), weights, strict=True):
        np.testing.assert_allclose(grad, w.grad.numpy(), rtol=1e-6, atol=1e-10)


TORCH_OPTIMIZERS = [
    ("sgd", {}, lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd", {"weight_decay": 0.05, "clip_norm": 0.5},
     lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05)),
    ("momentum", {"momentum": 0.8}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8)),
    ("nesterov", {}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("rmsprop", {}, lambda p: torch.optim.RMSprop(p, lr=0.1)),
    ("rmsprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.01},
     lambda p: torch.optim.RMSprop(p, lr=0.1, momentum=0.5, centered=True, weight_decay=0.01)),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.1},
     lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1)),
    ("adam", {}, lambda p: torch.optim.Adam(p, lr=0.1)),
    ("adam", {"beta1": 0.8, "beta2": 0.95, "weight_decay": 0.01, "amsgrad": True},
     lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.95), weight_decay=0.01, amsgrad=True)),
    ("adamw", {"weight_decay": 0.1}, lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.1)),
]


def test_every_optimizer_is_compared_with_torch():
    assert {name for name, *_ in TORCH_OPTIMIZERS} == set(OPTIMIZERS)


@pytest.mark.parametrize(("name", "kwargs", "make_torch"), TORCH_OPTIMIZERS)
def test_five_optimizer_steps_match_torch(name, kwargs, make_torch):
    sizes, acts, loss, kind = COMBOS[0]
    model, weights, X, Y = _setup(sizes, acts, loss, kind, seed=1)
    ours = get_optimizer(name, model.params, 0.1, **kwargs)
    theirs = make_torch(weights)
    for _ in range(5):
        model.train_step(X, Y, ours)
        theirs.zero_grad()
        _torch_forward(weights, acts, loss, X, Y).backward()
        if "clip_norm" in kwargs:
            torch.nn.utils.clip_grad_norm_(weights, kwargs["clip_norm"])
        theirs.step()
    for p, w in zip(model.params, weights, strict=True):
        np.testing.assert_allclose(p, w.detach().numpy(), rtol=1e-6, atol=1e-9)
