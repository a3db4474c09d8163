import math
import warnings

import numpy as np
import pytest
from nn_gradcheck import assert_close, numeric_gradient

from mlplab.errors import ConfigError
from mlplab.nn import ACTIVATIONS, get_activation

SPECS = [("identity", {}), ("linear", {}), ("relu", {}), ("leaky_relu", {"alpha": 0.1}),
         ("elu", {"alpha": 0.7}), ("gelu", {}), ("sigmoid", {}), ("tanh", {}),
         ("softplus", {}), ("softmax", {})]


def _reference(name, alpha, Z):
    """Each activation written straight from its textbook formula."""
    if name in ("identity", "linear"):
        return Z.copy()
    if name == "relu":
        return np.where(Z > 0, Z, 0.0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, alpha * Z)
    if name == "elu":
        return np.where(Z > 0, Z, alpha * (np.exp(Z) - 1))
    if name == "gelu":
        return 0.5 * Z * (1 + np.tanh(math.sqrt(2 / math.pi) * (Z + 0.044715 * Z ** 3)))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "softplus":
        return np.log(1 + np.exp(Z))
    if name == "softmax":
        e = np.exp(Z)
        return e / e.sum(axis=0)
    raise AssertionError(name)


def _inputs(seed=0, shape=(4, 6)):
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=2.0, size=shape)
    Z[np.abs(Z) < 1e-2] = 0.5  # keep finite differences away from the kinks at 0
    return Z, rng.normal(size=shape)


def test_every_registered_activation_is_tested():
    assert set(ACTIVATIONS) == {name for name, _ in SPECS}


@pytest.mark.parametrize(("name", "params"), SPECS)
def test_forward_matches_formula(name, params):
    Z, _ = _inputs()
    expected = _reference(name, params.get("alpha"), Z)
    assert_close(get_activation(name, **params).forward(Z), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("name", "params"), SPECS)
def test_backward_matches_finite_differences(name, params):
    act = get_activation(name, **params)
    Z, dA = _inputs(seed=1)
    A = act.forward(Z).copy()
    numeric = numeric_gradient(lambda: float(np.sum(dA * act.forward(Z))), Z)
    assert_close(act.backward(Z, A, dA), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "params"), SPECS)
def test_in_place_and_out_buffers_give_the_same_numbers(name, params):
    act = get_activation(name, **params)
    Z, dA = _inputs(seed=2)
    A = act.forward(Z).copy()
    dZ = act.backward(Z, A, dA).copy()
    in_place = Z.copy()
    assert np.array_equal(act.forward(in_place, out=in_place), A)
    buffer = np.empty_like(Z)
    assert act.forward(Z, out=buffer) is buffer and np.array_equal(buffer, A)
    dA_in_place = dA.copy()
    assert np.array_equal(act.backward(Z, A, dA_in_place, out=dA_in_place), dZ)


@pytest.mark.parametrize(("name", "params"), SPECS)
def test_backward_reads_Z_only_when_it_says_so(name, params):
    """Layers let A overwrite Z when backward_reads_Z is False, so Z must not matter then."""
    act = get_activation(name, **params)
    Z, dA = _inputs(seed=5)
    A = act.forward(Z).copy()
    garbage = 0.37 - Z
    if act.backward_reads_Z:
        assert not np.allclose(act.backward(garbage, A, dA), act.backward(Z, A, dA))
    else:
        assert np.array_equal(act.backward(garbage, A, dA), act.backward(Z, A, dA))


@pytest.mark.parametrize(("name", "params"), SPECS)
def test_float32_stays_float32(name, params):
    act = get_activation(name, **params)
    Z, dA = (x.astype(np.float32) for x in _inputs(seed=3))
    A = act.forward(Z)
    assert A.dtype == np.float32
    assert act.backward(Z, A, dA).dtype == np.float32


def test_relu_backward_is_the_tutorial_derivative_of_the_output():
    Z = np.array([[-2.0, 0.0, 3.0], [0.0, -0.0, 1e-300]])
    dA = np.array([[1.5, -2.0, 0.25], [4.0, 5.0, -6.0]])
    relu = get_activation("relu")
    A = relu.forward(Z)
    tutorial = np.multiply(dA, np.maximum(np.sign(A), np.zeros(A.shape)))
    assert np.array_equal(relu.backward(Z, A, dA), tutorial)
    assert relu.backward(Z, A, dA)[0, 1] == 0.0  # derivative 0 at Z = 0


def test_gelu_is_the_tanh_approximation_close_to_the_erf_form():
    Z = np.linspace(-5, 5, 101)[None, :]
    exact = 0.5 * Z * (1 + np.vectorize(math.erf)(Z / math.sqrt(2)))
    approx = get_activation("gelu").forward(Z)
    assert np.max(np.abs(approx - exact)) < 1e-3
    assert np.max(np.abs(approx - exact)) > 1e-6  # it really is the approximation


def test_saturating_activations_are_finite_without_warnings():
    Z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0], [1000.0, 0.0, 0.0, 0.0, -1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sig = get_activation("sigmoid").forward(Z)
        soft = get_activation("softplus").forward(Z)
        smax = get_activation("softmax").forward(Z)
    assert sig[0, 0] == 0.0 and sig[0, -1] == 1.0 and sig[0, 2] == 0.5
    assert_close(soft, np.maximum(Z, 0) + np.log1p(np.exp(-np.abs(Z))), rtol=1e-15)
    assert soft[0, -1] == 1000.0 and soft[0, 0] == 0.0
    assert np.all(np.isfinite(smax)) and smax[0, 0] == 0.0 and smax[1, 0] == 1.0
    assert_close(smax.sum(axis=0), np.ones(5), rtol=1e-15)


def test_softmax_is_over_the_feature_axis_and_shift_invariant():
    Z, _ = _inputs(seed=4)
    smax = get_activation("softmax")
    assert_close(smax.forward(Z).sum(axis=0), np.ones(Z.shape[1]), rtol=1e-14)
    assert_close(smax.forward(Z + np.arange(Z.shape[1])), smax.forward(Z), rtol=1e-12)


@pytest.mark.parametrize(("name", "params", "fragment"), [
    ("relux", {}, "unknown activation 'relux'"),
    ("relu", {"alpha": 0.1}, "no parameter 'alpha'"),
    ("leaky_relu", {"slope": 0.1}, "no parameter 'slope'"),
    ("leaky_relu", {"alpha": -1}, "activation.alpha"),
    ("elu", {"alpha": "big"}, "activation.alpha"),
])
def test_invalid_activation_raises_one_line_config_error(name, params, fragment):
    with pytest.raises(ConfigError) as info:
        get_activation(name, **params)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    if name == "relux":
        assert "valid choices: elu, gelu, identity, leaky_relu, linear, relu" in message
