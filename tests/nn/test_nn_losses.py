import warnings

import numpy as np
import pytest
from nn_gradcheck import assert_close, numeric_gradient

from mlplab.errors import ConfigError
from mlplab.nn import LOSSES, accuracy, edenau_loss, get_activation, get_loss

N = 5


def _targets(kind, rng, k):
    if kind == "onehot":
        return np.eye(k)[rng.integers(0, k, N)].T.copy()
    if kind == "binary":
        return rng.integers(0, 2, (1, N)).astype(float)
    return rng.normal(size=(k, N))


# (loss, output activation, outputs, target kind): every loss on its own activation, and the
# activation-agnostic losses chained through several output activations.
PAIRS = [
    ("mse", "identity", 3, "real"),
    ("mse", "tanh", 3, "real"),
    ("mse", "sigmoid", 2, "real"),
    ("mse", "softmax", 4, "onehot"),
    ("mse_half", "identity", 3, "real"),
    ("mse_half", "elu", 3, "real"),
    ("mse_half", "softplus", 2, "real"),
    ("binary_cross_entropy", "sigmoid", 1, "binary"),
    ("softmax_cross_entropy", "softmax", 4, "onehot"),
]


def test_every_registered_loss_is_tested():
    assert {name for name, *_ in PAIRS} | {"softmax_mse_nojac"} == set(LOSSES)


@pytest.mark.parametrize(("name", "act_name", "k", "kind"), PAIRS)
def test_delta_is_n_times_the_gradient_of_the_mean_loss(name, act_name, k, kind):
    rng = np.random.default_rng(0)
    loss, act = get_loss(name), get_activation(act_name)
    Z, Y = rng.normal(scale=1.5, size=(k, N)), _targets(kind, rng, k)
    numeric = numeric_gradient(lambda: loss.value(Z, act.forward(Z), Y), Z)
    delta = loss.delta(Z, act.forward(Z), Y, activation=act)
    assert_close(delta, N * numeric, rtol=1e-6, atol=1e-8)


def test_fused_deltas_are_output_minus_target():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(1, N))
    Y = _targets("binary", rng, 1)
    A = 1 / (1 + np.exp(-Z))
    bce = get_loss("binary_cross_entropy")
    assert_close(bce.delta(Z, A, Y, activation=get_activation("sigmoid")), A - Y, rtol=1e-15)
    Z = rng.normal(size=(4, N))
    Y = _targets("onehot", rng, 4)
    A = np.exp(Z) / np.exp(Z).sum(axis=0)
    ce = get_loss("softmax_cross_entropy")
    assert_close(ce.delta(Z, A, Y, activation=get_activation("softmax")), A - Y, rtol=1e-15)


def test_values_match_their_textbook_formulas():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(3, N))
    Y = rng.normal(size=(3, N))
    assert np.isclose(get_loss("mse").value(Z, Z, Y), np.sum((Z - Y) ** 2) / (3 * N))
    assert np.isclose(get_loss("mse_half").value(Z, Z, Y), 0.5 * np.sum((Z - Y) ** 2) / N)
    z, y = Z[:1], _targets("binary", rng, 1)
    a = 1 / (1 + np.exp(-z))
    expected = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
    assert np.isclose(get_loss("binary_cross_entropy").value(z, a, y), expected, rtol=1e-12)
    y = _targets("onehot", rng, 3)
    a = np.exp(Z) / np.exp(Z).sum(axis=0)
    expected = -np.mean(np.sum(y * np.log(a), axis=0))
    assert np.isclose(get_loss("softmax_cross_entropy").value(Z, a, y), expected, rtol=1e-12)


def test_cross_entropies_from_logits_stay_finite_at_huge_logits():
    Z = np.array([[800.0, -800.0, 800.0]])
    Y = np.array([[0.0, 1.0, 1.0]])
    A = get_activation("sigmoid").forward(Z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = get_loss("binary_cross_entropy").value(Z, A, Y)
        assert np.isclose(value, (800 + 800 + 0) / 3)
        Z2 = np.array([[900.0, 0.0], [0.0, 900.0]])
        Y2 = np.array([[0.0, 0.0], [1.0, 1.0]])
        value = get_loss("softmax_cross_entropy").value(Z2, None, Y2)
        assert np.isclose(value, (900 + 0) / 2)


def test_softmax_mse_nojac_delta_is_twice_the_error_and_not_the_true_gradient():
    rng = np.random.default_rng(3)
    smax, loss = get_activation("softmax"), get_loss("softmax_mse_nojac")
    Z, Y = rng.normal(size=(4, N)), _targets("onehot", rng, 4)
    A = smax.forward(Z)
    assert np.isclose(loss.value(Z, A, Y), np.mean((A - Y) ** 2))
    delta = loss.delta(Z, A, Y, activation=smax)
    assert np.array_equal(delta, 2 * (A - Y))
    true_delta = N * numeric_gradient(lambda: loss.value(Z, smax.forward(Z), Y), Z)
    assert np.max(np.abs(delta - true_delta)) > 0.1


def test_losses_keep_float32():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(4, N)).astype(np.float32)
    Y = _targets("onehot", rng, 4).astype(np.float32)
    smax = get_activation("softmax")
    A = smax.forward(Z)
    for name in ("mse", "mse_half", "softmax_cross_entropy", "softmax_mse_nojac"):
        assert get_loss(name).delta(Z, A, Y, activation=smax).dtype == np.float32


def test_accuracy_against_a_loop():
    rng = np.random.default_rng(5)
    A = rng.random((4, 50))
    labels = rng.integers(0, 4, 50)
    expected = sum(int(np.argmax(A[:, j]) == labels[j]) for j in range(50)) / 50
    assert accuracy(A, np.eye(4)[labels].T) == expected
    assert accuracy(A, labels) == expected
    p = rng.random((1, 50))
    y = rng.integers(0, 2, (1, 50))
    expected = sum(int((p[0, j] > 0.5) == bool(y[0, j])) for j in range(50)) / 50
    assert accuracy(p, y) == expected and 0 < expected < 1


def test_edenau_loss_is_the_tutorials_per_column_norm_mean():
    rng = np.random.default_rng(6)
    y, y_hat = rng.normal(size=(3, 40)), rng.normal(size=(3, 40))
    individual = 0.5 * (y_hat - y) ** 2
    tutorial = np.mean([np.linalg.norm(individual[:, col], 2) for col in range(40)])
    assert edenau_loss(y_hat, y) == tutorial


def test_unknown_loss_raises_one_line_config_error():
    with pytest.raises(ConfigError, match=r"unknown loss 'cross_entropy'; valid choices: "
                                          r"binary_cross_entropy, mse, mse_half"):
        get_loss("cross_entropy")
