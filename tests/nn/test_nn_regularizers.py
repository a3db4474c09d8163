"""Normalization, dropout, label smoothing, multi-output binary cross-entropy and the
optimizer's penalties: float64 finite-difference gradients, training vs evaluation paths
recomputed from the math, float32 kept, max-norm from its definition."""

import numpy as np
import pytest
from nn_gradcheck import assert_close, numeric_gradient

from mlplab.errors import ConfigError
from mlplab.nn import MLP, get_optimizer
from mlplab.nn.metrics import exact_match_accuracy, label_accuracy

N = 12


def _data(sizes, kind, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(sizes[0], N))
    if kind == "onehot":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], N)].T.copy()
    elif kind == "multilabel":
        Y = rng.integers(0, 2, (sizes[-1], N)).astype(float)
    else:
        Y = rng.normal(size=(sizes[-1], N))
    return X.astype(dtype), Y.astype(dtype)


def _model(sizes=(4, 7, 5, 3), acts=("tanh", "sigmoid", "softmax"),
           loss="softmax_cross_entropy", **kw):
    return MLP(list(sizes), list(acts), loss, weight_init="glorot_uniform", bias_init="same",
               seed=3, **kw)


def _check_gradients(model, X, Y, training=True):
    """Every analytic gradient against central differences of the (training) loss."""
    model.forward(X, training=training)
    for dropout in model.dropouts:
        if dropout is not None:
            dropout.frozen = True  # one fixed mask for all the perturbed forwards
    grads = [g.copy() for g in model.backward(Y)]
    for param, grad in zip(model.params, grads, strict=True):
        numeric = numeric_gradient(lambda: model.loss(X, Y, training=training), param)
        assert_close(grad, numeric, rtol=1e-5, atol=1e-8)
    return grads


CASES = {
    "bce multilabel": dict(sizes=(4, 7, 5, 3), acts=("tanh", "relu", "sigmoid"),
                           loss="binary_cross_entropy", kind="multilabel"),
    "bce one-vs-all": dict(sizes=(4, 7, 4), acts=("elu", "sigmoid"),
                           loss="binary_cross_entropy", kind="onehot"),
    "bce smoothed": dict(sizes=(4, 6, 3), acts=("tanh", "sigmoid"), label_smoothing=0.2,
                         loss="binary_cross_entropy", kind="multilabel"),
    "softmax smoothed": dict(sizes=(4, 6, 3), acts=("tanh", "softmax"), label_smoothing=0.1,
                             loss="softmax_cross_entropy", kind="onehot"),
    "batch norm": dict(norm="batch", kind="onehot"),
    "batch norm, sigmoid hidden": dict(acts=("sigmoid", "gelu", "softmax"), norm="batch",
                                       kind="onehot"),
    "layer norm": dict(norm="layer", kind="onehot"),
    "dropout": dict(dropout=[0.3, 0.5], kind="onehot"),
    "everything": dict(norm="batch", dropout=0.25, label_smoothing=0.1, kind="onehot"),
    "layer norm, dropout, mse": dict(acts=("relu", "tanh", "identity"), loss="mse",
                                     norm="layer", dropout=0.4, kind="real"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_gradients_match_finite_differences(case):
    spec = dict(CASES[case])
    kind = spec.pop("kind")
    model = _model(**spec)
    X, Y = _data(model.sizes, kind)
    _check_gradients(model, X, Y)


def test_batch_norm_evaluation_gradients_match_finite_differences():
    model = _model(norm="batch")
    X, Y = _data(model.sizes, "onehot")
    for _ in range(3):
        model.forward(X, training=True)  # running statistics away from 0 and 1
    _check_gradients(model, X, Y, training=False)


def _relu(z):
    return np.maximum(z, 0)


def _reference_forward(model, X, *, masks=None, batch_stats=False):
    """A [4, 7, 5, 3] relu/relu/softmax network with batch norm from the definitions:
    normalize with the batch's statistics (training) or the running ones (evaluation)."""
    state = model.state_dict()
    A = X
    for k in (1, 2):
        Z = state[f"W{k}"] @ A + state[f"b{k}"]
        if batch_stats:
            mean, var = Z.mean(axis=1, keepdims=True), Z.var(axis=1, keepdims=True)
        else:
            mean, var = state[f"norm{k}_running_mean"], state[f"norm{k}_running_var"]
        Z = state[f"norm{k}_gain"] * (Z - mean) / np.sqrt(var + 1e-5) + state[f"norm{k}_bias"]
        A = _relu(Z) * (1 if masks is None else masks[k - 1])
    Z = state["W3"] @ A + state["b3"]
    E = np.exp(Z - Z.max(axis=0))
    return E / E.sum(axis=0)


def test_evaluation_uses_running_statistics_and_no_dropout_training_the_batch():
    model = _model(acts=("relu", "relu", "softmax"), norm="batch", dropout=0.5)
    X, Y = _data(model.sizes, "onehot")
    opt = get_optimizer("sgd", model.params, 0.1, param_names=model.param_names)
    for _ in range(4):
        model.train_step(X, Y, opt)
    trained = model.last_output.copy()
    evaluated = model.predict(X)
    np.testing.assert_allclose(evaluated, _reference_forward(model, X), rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), evaluated)  # evaluation draws nothing
    # the same network on the training path: the batch's statistics and the masks
    model.forward(X, training=True)
    masks = [d.mask for d in model.dropouts]
    np.testing.assert_allclose(model.last_output, _reference_forward(
        model, X, masks=masks, batch_stats=True), rtol=1e-12)
    assert not np.allclose(trained, evaluated, atol=1e-3)


def test_running_statistics_follow_the_momentum_and_the_unbiased_variance():
    model = _model(norm="batch", norm_momentum=0.3)
    X, _ = _data(model.sizes, "onehot")
    model.forward(X, training=True)
    Z = model.params[0] @ X + model.params[1]
    np.testing.assert_allclose(model.buffers["norm1_running_mean"],
                               0.3 * Z.mean(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(model.buffers["norm1_running_var"],
                               0.7 + 0.3 * Z.var(axis=1, ddof=1, keepdims=True), rtol=1e-12)
    model.forward(X)  # evaluation leaves them alone
    np.testing.assert_allclose(model.buffers["norm1_running_mean"],
                               0.3 * Z.mean(axis=1, keepdims=True), rtol=1e-12)


def test_dropout_keeps_the_rate_scales_by_its_inverse_and_is_seeded():
    model = MLP([50, 400, 2], ["identity", "identity"], "mse", dropout=0.3, seed=7)
    X = np.ones((50, 500))
    model.params[0][...] = 1.0 / 50  # every hidden unit is exactly 1 before dropout
    model.params[1][...] = 0
    model.forward(X, training=True)
    mask = model.dropouts[0].mask
    assert set(np.unique(mask)) == {0.0, 1 / 0.7}
    assert abs(np.mean(mask == 0) - 0.3) < 0.01  # 200,000 draws: sd of the rate ~0.001
    again = MLP([50, 400, 2], ["identity", "identity"], "mse", dropout=0.3, seed=7)
    again.forward(X, training=True)
    np.testing.assert_array_equal(again.dropouts[0].mask, mask)


def test_state_dict_round_trips_running_statistics_and_the_dropout_stream():
    model = _model(norm="batch", dropout=0.5)
    X, Y = _data(model.sizes, "onehot")
    opt = get_optimizer("sgd", model.params, 0.1, param_names=model.param_names)
    model.train_step(X, Y, opt)
    saved = model.state_dict()
    model.train_step(X, Y, opt)
    next_mask = model.dropouts[0].mask.copy()
    copy = _model(norm="batch", dropout=0.5)
    copy.load_state_dict(saved)
    copy.forward(X, training=True)
    np.testing.assert_array_equal(copy.dropouts[0].mask, next_mask)
    with pytest.raises(Exception, match="norm1_running_mean"):
        copy.load_state_dict({k: v for k, v in saved.items() if k != "norm1_running_mean"})


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_float32_stays_float32(norm):
    model = _model(norm=norm, dropout=0.2, label_smoothing=0.1, dtype="float32")
    X, Y = _data(model.sizes, "onehot", dtype="float32")
    opt = get_optimizer("adamw", model.params, 0.01, param_names=model.param_names,
                        decay_biases=False, l1=1e-3, max_norm=1.0)
    loss = model.train_step(X, Y, opt, return_loss=True)
    assert np.isfinite(loss)
    arrays = [*model.params, *model.grads, *model.buffers.values(), model.predict(X),
              *opt.state["exp_avg"]]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}


def test_penalties_add_their_subgradients_and_spare_the_biases():
    """One SGD step (lr 1) moves p by the gradient of loss + wd/2 |W|^2 + l1 |W|_1, the
    penalties on the weight matrices only when decay_biases is false."""
    model = _model(norm="layer")
    X, Y = _data(model.sizes, "onehot")
    wd, l1 = 0.3, 0.05
    weights = [name.startswith("W") for name in model.param_names]
    before = [p.copy() for p in model.params]

    def objective():
        penalty = sum(wd / 2 * np.sum(p * p) + l1 * np.sum(np.abs(p))
                      for p, w in zip(model.params, weights, strict=True) if w)
        return model.loss(X, Y, training=True) + penalty

    expected = [numeric_gradient(objective, p) for p in model.params]
    opt = get_optimizer("sgd", model.params, 1.0, param_names=model.param_names,
                        weight_decay=wd, l1=l1, decay_biases=False)
    model.train_step(X, Y, opt)
    for old, new, grad in zip(before, model.params, expected, strict=True):
        assert_close(old - new, grad, rtol=1e-5, atol=1e-8)


def test_decoupled_decay_spares_the_biases_when_asked():
    model = _model()
    X, Y = _data(model.sizes, "onehot")
    twin = _model()
    opt = get_optimizer("adamw", model.params, 0.01, param_names=model.param_names,
                        weight_decay=0.5, decay_biases=False)
    plain = get_optimizer("adam", twin.params, 0.01, param_names=twin.param_names)
    model.train_step(X, Y, opt)
    twin.train_step(X, Y, plain)
    for name, p, q, p0 in zip(model.param_names, model.params, twin.params,
                              _model().params, strict=True):
        # AdamW's step = Adam's step on p shrunk by (1 - lr * wd) first
        expected = q - 0.005 * p0 if name.startswith("W") else q
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)


def test_max_norm_caps_every_units_incoming_weights():
    model = _model()
    X, Y = _data(model.sizes, "onehot")
    twin = _model()
    model.params[0][0] *= 10  # one row far above the cap
    twin.params[0][0] *= 10
    opt = get_optimizer("sgd", model.params, 0.1, param_names=model.param_names, max_norm=1.0)
    plain = get_optimizer("sgd", twin.params, 0.1, param_names=twin.param_names)
    model.train_step(X, Y, opt)
    twin.train_step(X, Y, plain)
    for name, p, q in zip(model.param_names, model.params, twin.params, strict=True):
        if not name.startswith("W"):
            np.testing.assert_array_equal(p, q)
            continue
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        np.testing.assert_allclose(p, np.where(norms > 1.0, q / norms, q), rtol=1e-12)
    assert np.linalg.norm(model.params[0][0]) == pytest.approx(1.0, rel=1e-12)


def test_multilabel_accuracies():
    A = np.array([[0.9, 0.2, 0.7], [0.1, 0.6, 0.4]])
    Y = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert exact_match_accuracy(A, Y) == pytest.approx(1 / 3)  # only sample 0 all right
    assert label_accuracy(A, Y) == pytest.approx(4 / 6)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"dropout": 1.0}, "architecture.dropout: invalid value 1.0"),
    ({"dropout": [0.1]}, "one rate per hidden layer (2)"),
    ({"norm": "group"}, "architecture.norm: unknown value 'group'"),
    ({"norm_momentum": 0.0}, "architecture.norm_momentum"),
    ({"norm_eps": 0.0}, "architecture.norm_eps"),
    ({"label_smoothing": 1.0}, "architecture.label_smoothing"),
    ({"label_smoothing": 0.1, "loss": "mse", "acts": ("relu", "relu", "identity")},
     "'mse' has no parameter 'smoothing'"),
])
def test_invalid_options_raise_one_line_config_errors(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        _model(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
