import numpy as np
import pytest
from nn_gradcheck import assert_close, numeric_gradient

from mlplab.errors import ConfigError, DataError
from mlplab.nn import MLP, OPTIMIZERS, Dense, get_activation, get_optimizer
from mlplab.nn.optimizer_base import flat_base

N = 6

# (sizes, activations, loss, target kind)
COMBOS = [
    ([3, 5, 4, 3], ["relu", "relu", "softmax"], "softmax_cross_entropy", "onehot"),
    ([3, 5, 4, 1], ["tanh", "sigmoid", "sigmoid"], "binary_cross_entropy", "binary"),
    ([3, 5, 4, 2], ["elu", "leaky_relu", "identity"], "mse", "real"),
    ([3, 5, 4, 2], ["gelu", "softplus", "identity"], "mse_half", "real"),
    ([3, 4, 2], ["sigmoid", "tanh"], "mse", "real"),
    ([3, 4, 3], ["relu", "softmax"], "mse", "onehot"),
]


def _data(sizes, kind, seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(sizes[0], n))
    k = sizes[-1]
    if kind == "onehot":
        Y = np.eye(k)[rng.integers(0, k, n)].T.copy()
    elif kind == "binary":
        Y = rng.integers(0, 2, (1, n)).astype(float)
    else:
        Y = rng.normal(size=(k, n))
    return X, Y


@pytest.mark.parametrize(("sizes", "acts", "loss", "kind"), COMBOS)
def test_backward_matches_finite_differences_for_every_parameter(sizes, acts, loss, kind):
    model = MLP(sizes, acts, loss, weight_init="glorot_normal", bias_init="same", seed=1)
    X, Y = _data(sizes, kind)
    grads = [g.copy() for g in (model.forward(X), model.backward(Y))[1]]
    for param, grad in zip(model.params, grads, strict=True):
        assert_close(grad, numeric_gradient(lambda: model.loss(X, Y), param), rtol=1e-6, atol=1e-9)


def _tutorial_epoch(Ws, bs, X, Y, lr):
    """One full-batch epoch written the way the regression tutorial writes it; returns the
    gradients [dW1, db1, ...] it applied."""
    A, cache = X, []
    for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        Z = np.add(np.dot(W, A), b)
        cache.append(A)
        A = Z if i == len(Ws) - 1 else np.maximum(Z, np.zeros(Z.shape))
    dZ, n, grads = A - Y, X.shape[1], {}
    for i in range(len(Ws) - 1, -1, -1):
        if i < len(Ws) - 1:
            out = cache[i + 1]
            dZ = np.multiply(np.dot(Ws[i + 1].T, dZ), np.maximum(np.sign(out), np.zeros(out.shape)))
        grads[i] = (np.dot(dZ, cache[i].T) / n, np.sum(dZ, axis=1, keepdims=True) / n)
    for i, (dW, db) in grads.items():
        Ws[i] = Ws[i] - lr * dW
        bs[i] = bs[i] - lr * db
    return [g for i in sorted(grads) for g in grads[i]]


def test_full_batch_sgd_reproduces_the_tutorial_arithmetic_bit_for_bit():
    sizes = [2, 4, 4, 3]
    np.random.seed(42)  # noqa: NPY002  (legacy stream, as the tutorial)
    X, Y = np.random.rand(2, 7000) * 100, np.random.rand(3, 7000) * 50  # noqa: NPY002
    model = MLP(sizes, ["relu", "relu", "identity"], "mse_half", bias_init="same", rng="legacy")
    Ws, bs = [p.copy() for p in model.params[0::2]], [p.copy() for p in model.params[1::2]]
    optimizer = get_optimizer("sgd", model.params, 1e-5)
    for _ in range(10):
        expected_grads = _tutorial_epoch(Ws, bs, X, Y, 1e-5)
        model.forward(X)
        grads = model.backward(Y)
        assert all(np.array_equal(g, e) for g, e in zip(grads, expected_grads, strict=True))
        optimizer.step(grads)
        assert all(np.array_equal(a, b) for a, b in zip(model.params[0::2], Ws, strict=True))
        assert all(np.array_equal(a, b) for a, b in zip(model.params[1::2], bs, strict=True))
    model.train_step(X, Y, optimizer)  # the fast path does the same arithmetic
    _tutorial_epoch(Ws, bs, X, Y, 1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(model.params[0::2], Ws, strict=True))


def test_train_step_equals_forward_backward_step_and_keeps_the_pre_update_output():
    sizes, acts, loss, kind = COMBOS[0]
    X, Y = _data(sizes, kind, n=40)
    a, b = (MLP(sizes, acts, loss, seed=3) for _ in range(2))
    opt_a, opt_b = (get_optimizer("adam", m.params, 0.01) for m in (a, b))
    for _ in range(3):
        expected_output = b.forward(X).copy()
        expected_loss = b.loss(X, Y)
        b.forward(X)
        opt_b.step(b.backward(Y))
        value = a.train_step(X, Y, opt_a, return_loss=True)
        assert value == expected_loss
        assert np.array_equal(a.last_output, expected_output)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params, strict=True))


def test_buffers_per_batch_size_do_not_mix_results():
    sizes, acts, loss, kind = COMBOS[2]
    model = MLP(sizes, acts, loss, seed=4)
    X, _ = _data(sizes, kind, n=10)
    full = model.predict(X)
    small = model.predict(X[:, :3])
    for size in (10, 3, 7, 10, 1, 2, 5):  # more sizes than are cached
        model.forward(X[:, :size])
    assert np.array_equal(model.predict(X), full)
    assert np.array_equal(model.predict(X[:, :3]), small)
    assert_close(model.predict(X, batch_size=4), full, rtol=1e-14)
    assert model.predict(X) is not model.predict(X)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_float32_model_keeps_float32_everywhere(optimizer):
    sizes, acts, loss, kind = COMBOS[0]
    model = MLP(sizes, acts, loss, dtype="float32", seed=5)
    X, Y = (a.astype(np.float32) for a in _data(sizes, kind, n=8))
    opt = get_optimizer(optimizer, model.params, 0.01, weight_decay=1e-3, clip_norm=1.0)
    for _ in range(2):
        model.train_step(X, Y, opt)
    model.forward(X.astype(np.float64))  # converted at the door, not upcast inside
    arrays = model.params + model.backward(Y) + [model.last_output, model.predict(X)]
    arrays += [v for v in opt.state_dict().values() if isinstance(v, np.ndarray)]
    assert all(a.dtype == np.float32 for a in arrays)


def test_state_dict_round_trip_loads_in_place():
    sizes, acts, loss, kind = COMBOS[1]
    source, target = MLP(sizes, acts, loss, seed=6), MLP(sizes, acts, loss, seed=7)
    state = source.state_dict()
    assert list(state) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    state["W1"][0, 0] += 1.0  # a copy: the model is untouched
    assert source.params[0][0, 0] != state["W1"][0, 0]
    before = [id(p) for p in target.params]
    target.load_state_dict(source.state_dict())
    assert [id(p) for p in target.params] == before
    X, _ = _data(sizes, kind)
    assert np.array_equal(target.predict(X), source.predict(X))
    with pytest.raises(DataError, match="W3"):
        target.load_state_dict({k: v for k, v in state.items() if k != "W3"})
    with pytest.raises(DataError, match="shape"):
        target.load_state_dict({**state, "b1": np.zeros((2, 1))})


def test_activation_instances_and_names_are_accepted():
    model = MLP([2, 3, 1], [get_activation("leaky_relu", alpha=0.2), "sigmoid"],
                "binary_cross_entropy")
    assert model.layers[0].activation.alpha == 0.2
    assert model.n_params == 2 * 3 + 3 + 3 + 1


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"activations": ["relu", "relux"]}, "unknown activation 'relux'"),
    ({"activations": ["relu"]}, "one activation per layer"),
    ({"sizes": [3, 0, 2]}, "positive integers"),
    ({"sizes": [3]}, "positive integers"),
    ({"sizes": [3, 4.5, 2]}, "positive integers"),
    ({"dtype": "float16"}, "unknown dtype 'float16'; valid choices: float32, float64"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"weight_init": "he"}, "unknown initializer 'he'"),
    ({"activations": ["relu", "sigmoid"], "loss": "softmax_cross_entropy"},
     "'sigmoid' cannot be used with loss 'softmax_cross_entropy'; valid choices: softmax"),
    ({"activations": ["relu", "softmax"], "loss": "binary_cross_entropy"},
     "'softmax' cannot be used with loss 'binary_cross_entropy'"),
    ({"sizes": [3, 4, 1], "loss": "mse"}, "'softmax' over 1 output unit"),
])
def test_invalid_construction_raises_one_line_config_error(kwargs, fragment):
    args = {"sizes": [3, 4, 2], "activations": ["relu", "softmax"], "loss": "softmax_cross_entropy"}
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        MLP(**args)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_wrongly_shaped_batches_raise_data_error():
    model = MLP([3, 2], ["identity"], "mse")
    with pytest.raises(DataError, match=r"X: expected shape \(3, n_samples\)"):
        model.forward(np.zeros((5, 3)))
    model.forward(np.zeros((3, 4)))
    with pytest.raises(DataError, match="Y"):
        model.backward(np.zeros((2, 5)))


def test_params_and_grads_tile_flat_buffers_that_optimizers_use_in_one_pass():
    model = MLP([3, 4, 2], ["tanh", "identity"], "mse")
    assert flat_base(model.params) is model.flat_params
    assert flat_base(model.grads) is model.flat_grads
    assert model.flat_params.size == model.n_params
    optimizer = get_optimizer("adam", model.params, 0.1, param_names=model.param_names)
    assert len(optimizer._units) == 1  # the fast path, not one update per param
    X, Y = _data([3, 4, 2], "real")
    model.train_step(X, Y, optimizer)
    assert optimizer.state["exp_avg"][0].shape == model.params[0].shape
    assert np.shares_memory(optimizer.state["exp_avg"][2], optimizer._unit_state["exp_avg"][0])


def test_standalone_dense_layer_follows_the_convention():
    rng = np.random.default_rng(8)
    layer = Dense(3, 2, "tanh")
    layer.W[...] = rng.normal(size=(2, 3))
    layer.b[...] = rng.normal(size=(2, 1))
    A_prev = rng.normal(size=(3, 5))
    A = layer.forward(A_prev)
    assert_close(A, np.tanh(layer.W @ A_prev + layer.b), rtol=1e-14)
    dZ = rng.normal(size=(2, 5))
    dA_prev = layer.backward(dZ)
    assert_close(layer.dW, dZ @ A_prev.T / 5, rtol=1e-14)
    assert_close(layer.db, dZ.sum(axis=1, keepdims=True) / 5, rtol=1e-14)
    assert_close(dA_prev, layer.W.T @ dZ, rtol=1e-14)
    assert Dense(3, 2, "relu", input_grad=False).forward(A_prev) is not None
