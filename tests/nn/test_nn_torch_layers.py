"""PyTorch as the oracle of the new losses, layers and penalties (skipped without torch):
BCEWithLogitsLoss over several labels, label smoothing, BatchNorm1d in training and
evaluation, LayerNorm, dropout (its statistics, and a network under a fixed mask), and
weight decay that spares the biases. The same weights and data in float64; forward,
gradients and a few optimizer steps agree to 1e-6."""

import numpy as np
import pytest

from mlplab.nn import MLP, get_optimizer

torch = pytest.importorskip("torch")
F = torch.nn.functional

N = 24
ACTS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
        "identity": lambda z: z, "softmax": lambda z: z}  # softmax is inside the loss


class TorchTwin:
    """The same network as `model` built from torch modules, in torch's (n, features)
    layout, with its parameters listed in the order of `model.param_names`."""

    def __init__(self, model, acts, norm="none", momentum=0.1, eps=1e-5):
        self.acts, self.linears, self.norms = acts, [], []
        for W, b in zip(model.params[0:2 * len(model.layers):2],
                        model.params[1:2 * len(model.layers):2], strict=True):
            linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W))
                linear.bias.copy_(torch.from_numpy(b.ravel()))
            self.linears.append(linear)
        for units in model.sizes[1:-1] if norm != "none" else []:
            module = (torch.nn.BatchNorm1d(units, momentum=momentum, eps=eps, dtype=torch.float64)
                      if norm == "batch" else
                      torch.nn.LayerNorm(units, eps=eps, dtype=torch.float64))
            self.norms.append(module)
        self.params = [p for lin in self.linears for p in (lin.weight, lin.bias)]
        self.params += [p for m in self.norms for p in (m.weight, m.bias)]

    def train(self, on: bool):
        for m in self.norms:
            m.train(on)

    def logits(self, X, masks=None):
        A = torch.from_numpy(X.T.copy())
        for k, linear in enumerate(self.linears):
            Z = linear(A)
            if k == len(self.linears) - 1:
                return Z
            if self.norms:
                Z = self.norms[k](Z)
            A = ACTS[self.acts[k]](Z)
            if masks is not None and masks[k] is not None:
                A = A * torch.from_numpy(masks[k].T.copy())


def _grads(model):
    return {name: g.copy() for name, g in zip(model.param_names, model.grads, strict=True)}


# Gradients that are zero in exact arithmetic come out as rounding noise, whose size depends
# on each library's summation order (OpenBLAS and torch pick kernels by CPU). A bound on that
# noise: a few ulps of the loss's gradients, which are O(0.1) here.
NOISE = 1e-14


def _assert_params(model, twin, rtol=1e-6, atol=None):
    """`atol` maps a parameter's name to the absolute tolerance it needs (default 1e-9)."""
    for name, ours, theirs in zip(model.param_names, model.params, twin.params, strict=True):
        np.testing.assert_allclose(ours.ravel(), theirs.detach().numpy().ravel(), rtol=rtol,
                                   atol=(atol or {}).get(name, 1e-9), err_msg=name)


def _data(sizes, kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(sizes[0], N))
    if kind == "multilabel":
        return X, rng.integers(0, 2, (sizes[-1], N)).astype(float)
    return X, np.eye(sizes[-1])[rng.integers(0, sizes[-1], N)].T.copy()


def _torch_loss(loss, logits, Y, smoothing=0.0):
    target = torch.from_numpy(Y.T.copy())
    if loss == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(logits, target * (1 - smoothing) + smoothing / 2)
    return F.cross_entropy(logits, target.argmax(dim=1), label_smoothing=smoothing)


def _compare_steps(model, twin, loss, X, Y, ours, theirs, steps=5, smoothing=0.0,
                   penalty=None, zero_grad=()):
    """Forward and gradients first, then `steps` training steps of both.

    `zero_grad` names parameters whose gradient is zero in exact arithmetic (a bias just
    before batch norm, which the normalization subtracts again). Both sides' gradients of
    them must stay below NOISE at every step. Their values are then noise integrated by the
    optimizer: Adam moves a parameter by lr * |m_hat| / (sqrt(v_hat) + eps) <= lr * NOISE / eps
    a step, so the two sides may differ by up to twice `steps` of that, whatever the kernels.
    """
    index = [model.param_names.index(name) for name in zero_grad]
    for step in range(steps):
        twin.train(True)
        theirs.zero_grad()
        value = _torch_loss(loss, twin.logits(X), Y, smoothing)
        if penalty is not None:
            value = value + penalty()
        value.backward()
        if step == 0:
            assert model.loss(X, Y, training=True) == pytest.approx(
                _torch_loss(loss, twin.logits(X), Y, smoothing).item(), rel=1e-10)
        model.train_step(X, Y, ours)
        for k in index:
            assert np.abs(model.grads[k]).max() < NOISE, model.param_names[k]
            assert twin.params[k].grad.abs().max().item() < NOISE, model.param_names[k]
        theirs.step()
    drift = {}
    if zero_grad:
        drift = dict.fromkeys(zero_grad, 2 * steps * theirs.defaults["lr"] * NOISE
                              / theirs.defaults["eps"])
    _assert_params(model, twin, atol=drift)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_bce_over_several_labels_matches_bce_with_logits(smoothing):
    sizes, acts = [4, 8, 3], ["tanh", "sigmoid"]
    model = MLP(sizes, acts, "binary_cross_entropy", seed=1, label_smoothing=smoothing)
    twin = TorchTwin(model, acts)
    X, Y = _data(sizes, "multilabel")
    model.forward(X, training=True)
    model.backward(Y)
    _torch_loss("binary_cross_entropy", twin.logits(X), Y, smoothing).backward()
    for (name, g), w in zip(_grads(model).items(), twin.params, strict=True):
        np.testing.assert_allclose(g.ravel(), w.grad.numpy().ravel(), rtol=1e-6, atol=1e-12,
                                   err_msg=name)
    fresh = MLP(sizes, acts, "binary_cross_entropy", seed=1, label_smoothing=smoothing)
    twin = TorchTwin(fresh, acts)
    _compare_steps(fresh, twin, "binary_cross_entropy", X, Y, get_optimizer(
        "adam", fresh.params, 0.05), torch.optim.Adam(twin.params, lr=0.05),
        smoothing=smoothing)


def test_label_smoothing_matches_cross_entropy_loss():
    sizes, acts = [4, 8, 5], ["relu", "softmax"]
    model = MLP(sizes, acts, "softmax_cross_entropy", seed=2, label_smoothing=0.2)
    twin = TorchTwin(model, acts)
    X, Y = _data(sizes, "onehot")
    _compare_steps(model, twin, "softmax_cross_entropy", X, Y,
                   get_optimizer("sgd", model.params, 0.3, momentum=0.9),
                   torch.optim.SGD(twin.params, lr=0.3, momentum=0.9), smoothing=0.2)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_normalization_matches_torch_in_training_and_evaluation(norm):
    sizes, acts = [4, 8, 6, 3], ["relu", "tanh", "softmax"]
    model = MLP(sizes, acts, "softmax_cross_entropy", seed=3, norm=norm, norm_momentum=0.3,
                norm_eps=1e-3)
    twin = TorchTwin(model, acts, norm=norm, momentum=0.3, eps=1e-3)
    X, Y = _data(sizes, "onehot")
    model.forward(X, training=True)
    model.backward(Y)
    _torch_loss("softmax_cross_entropy", twin.logits(X), Y).backward()
    for (name, g), w in zip(_grads(model).items(), twin.params, strict=True):
        np.testing.assert_allclose(g.ravel(), w.grad.numpy().ravel(), rtol=1e-6, atol=1e-12,
                                   err_msg=name)
    model = MLP(sizes, acts, "softmax_cross_entropy", seed=3, norm=norm, norm_momentum=0.3,
                norm_eps=1e-3)
    twin = TorchTwin(model, acts, norm=norm, momentum=0.3, eps=1e-3)
    _compare_steps(model, twin, "softmax_cross_entropy", X, Y,
                   get_optimizer("adam", model.params, 0.05),
                   torch.optim.Adam(twin.params, lr=0.05),
                   zero_grad=("b1", "b2") if norm == "batch" else ())
    if norm == "batch":
        for k, m in enumerate(twin.norms, start=1):
            np.testing.assert_allclose(model.buffers[f"norm{k}_running_mean"].ravel(),
                                       m.running_mean.numpy(), rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(model.buffers[f"norm{k}_running_var"].ravel(),
                                       m.running_var.numpy(), rtol=1e-6, atol=1e-12)
    twin.train(False)
    X_new, _ = _data(sizes, "onehot", seed=9)
    with torch.no_grad():
        expected = torch.softmax(twin.logits(X_new), dim=1).numpy().T
    np.testing.assert_allclose(model.predict(X_new), expected, rtol=1e-6, atol=1e-12)


def test_dropout_statistics_match_torch_dropout():
    p, shape = 0.3, (200, 1000)
    torch.manual_seed(0)
    theirs = torch.nn.Dropout(p)(torch.ones(shape, dtype=torch.float64)).numpy()
    model = MLP([1, shape[0], 1], ["identity", "identity"], "mse", dropout=p, seed=0)
    model.params[0][...] = 1.0
    model.params[1][...] = 0.0
    model.forward(np.ones((1, shape[1])), training=True)
    ours = model.dropouts[0].mask
    assert set(np.unique(ours)) == set(np.unique(theirs))  # {0, 1 / (1 - p)}
    # 200,000 draws each: the kept fractions' sd is about 0.001
    assert abs(np.mean(ours == 0) - np.mean(theirs == 0)) < 0.006
    assert ours.mean() == pytest.approx(1.0, abs=0.01)  # inverted: the mean is kept


def test_a_network_under_a_fixed_dropout_mask_matches_torch():
    sizes, acts = [4, 10, 8, 3], ["relu", "sigmoid", "softmax"]
    model = MLP(sizes, acts, "softmax_cross_entropy", seed=4, dropout=[0.5, 0.25],
                norm="batch")
    twin = TorchTwin(model, acts, norm="batch")
    X, Y = _data(sizes, "onehot")
    ours = get_optimizer("momentum", model.params, 0.2)
    theirs = torch.optim.SGD(twin.params, lr=0.2, momentum=0.9)
    for _ in range(4):
        model.train_step(X, Y, ours)
        masks = [d.mask for d in model.dropouts]  # the masks that step drew
        theirs.zero_grad()
        _torch_loss("softmax_cross_entropy", twin.logits(X, masks), Y).backward()
        theirs.step()
    _assert_params(model, twin)


def test_weight_decay_and_l1_spare_the_biases_like_torch_param_groups():
    sizes, acts = [4, 8, 6, 3], ["relu", "tanh", "softmax"]
    model = MLP(sizes, acts, "softmax_cross_entropy", seed=5, norm="layer")
    twin = TorchTwin(model, acts, norm="layer")
    X, Y = _data(sizes, "onehot")
    weights = [w for name, w in zip(model.param_names, twin.params, strict=True)
               if name.startswith("W")]
    others = [w for name, w in zip(model.param_names, twin.params, strict=True)
              if not name.startswith("W")]
    ours = get_optimizer("adamw", model.params, 0.05, weight_decay=0.2, l1=0.01,
                         decay_biases=False, param_names=model.param_names)
    theirs = torch.optim.AdamW([{"params": weights, "weight_decay": 0.2},
                                {"params": others, "weight_decay": 0.0}], lr=0.05)
    _compare_steps(model, twin, "softmax_cross_entropy", X, Y, ours, theirs,
                   penalty=lambda: 0.01 * sum(w.abs().sum() for w in weights))
