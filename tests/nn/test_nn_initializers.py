# ruff: noqa: NPY002  (legacy mode is defined by the global np.random stream)
import numpy as np
import pytest

from mlplab.errors import ConfigError
from mlplab.nn import MLP, get_initializer, init_params


def _pairs(params):
    return list(zip(params[0::2], params[1::2], strict=True))


def test_legacy_he_normal_is_the_edenau_draw_sequence():
    sizes = [2, 4, 4, 3]
    np.random.seed(42)
    data = np.random.rand(2, 10000) * 100
    expected = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        expected.append(np.random.randn(n_out, n_in) * np.sqrt(2 / n_in))
        expected.append(np.random.randn(n_out, 1) * np.sqrt(2 / n_in))
    np.random.seed(42)
    assert np.array_equal(np.random.rand(2, 10000) * 100, data)
    params = init_params(sizes, "he_normal", "same", "legacy", "float64")
    assert all(np.array_equal(p, e) for p, e in zip(params, expected, strict=True))


@pytest.mark.parametrize(("seed", "sizes", "std"), [
    (2, [2, 25, 50, 50, 25, 1], 0.1),   # Skalski: randn * 0.1
    (7, [784, 256, 128, 10], 1.0),      # arask: plain randn
])
def test_legacy_normal_is_the_tutorial_randn_times_std(seed, sizes, std):
    np.random.seed(seed)
    expected = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        if std == 1.0:
            expected += [np.random.randn(n_out, n_in), np.random.randn(n_out, 1)]
        else:
            expected += [np.random.randn(n_out, n_in) * std, np.random.randn(n_out, 1) * std]
    np.random.seed(seed)
    model = MLP(sizes, ["relu"] * (len(sizes) - 2) + ["identity"], "mse_half",
                weight_init=get_initializer("normal", std=std), bias_init="same", rng="legacy")
    assert all(np.array_equal(p, e) for p, e in zip(model.params, expected, strict=True))


@pytest.mark.parametrize(("name", "expected_std"), [
    ("he_normal", lambda i, o: np.sqrt(2 / i)),
    ("kaiming_normal", lambda i, o: np.sqrt(2 / i)),
    ("glorot_normal", lambda i, o: np.sqrt(2 / (i + o))),
    ("xavier_normal", lambda i, o: np.sqrt(2 / (i + o))),
    ("lecun_normal", lambda i, o: np.sqrt(1 / i)),
])
def test_normal_schemes_have_the_right_spread(name, expected_std):
    fan_in, fan_out = 400, 900
    W = init_params([fan_in, fan_out], name, "zeros", np.random.default_rng(0))[0]
    assert W.shape == (fan_out, fan_in)
    assert abs(W.mean()) < 0.01 * expected_std(fan_in, fan_out)
    assert abs(W.std() / expected_std(fan_in, fan_out) - 1) < 0.01


@pytest.mark.parametrize(("name", "limit"), [
    ("he_uniform", lambda i, o: np.sqrt(6 / i)),
    ("glorot_uniform", lambda i, o: np.sqrt(6 / (i + o))),
    ("xavier_uniform", lambda i, o: np.sqrt(6 / (i + o))),
    ("lecun_uniform", lambda i, o: np.sqrt(3 / i)),
])
def test_uniform_schemes_fill_their_interval(name, limit):
    fan_in, fan_out = 400, 900
    bound = limit(fan_in, fan_out)
    W = init_params([fan_in, fan_out], name, "zeros", np.random.default_rng(1))[0]
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.999 * bound
    assert abs(W.std() / (bound / np.sqrt(3)) - 1) < 0.01


def test_fixed_scale_orthogonal_and_constant_schemes():
    rng = np.random.default_rng(2)
    W = init_params([300, 500], get_initializer("normal", std=0.3), "zeros", rng)[0]
    assert abs(W.std() / 0.3 - 1) < 0.01
    W = init_params([300, 500], get_initializer("uniform", a=0.2), "zeros", rng)[0]
    assert np.abs(W).max() <= 0.2 and np.abs(W).max() > 0.199
    for n_in, n_out in ((30, 50), (50, 30)):
        W = init_params([n_in, n_out], get_initializer("orthogonal", gain=2.0), "zeros", rng)[0]
        small = W @ W.T if n_out <= n_in else W.T @ W
        np.testing.assert_allclose(small, 4.0 * np.eye(min(n_in, n_out)), atol=1e-12)
    W, b = init_params([3, 4], "zeros", get_initializer("constant", value=0.5), rng)
    assert not W.any() and np.all(b == 0.5)


def test_bias_same_draws_biases_from_the_weight_scheme_and_zeros_draws_nothing():
    W, b = init_params([200, 3000], "he_normal", "same", np.random.default_rng(3))
    assert abs(b.std() / np.sqrt(2 / 200) - 1) < 0.05
    W_zero_bias, b_zero = init_params([200, 3000], "he_normal", "zeros", np.random.default_rng(3))
    assert not b_zero.any() and np.array_equal(W, W_zero_bias)


def test_seeds_reproduce_and_dtype_is_respected():
    a = init_params([5, 6, 2], "glorot_uniform", "same", np.random.default_rng(4), "float32")
    b = init_params([5, 6, 2], "glorot_uniform", "same", np.random.default_rng(4), "float32")
    c = init_params([5, 6, 2], "glorot_uniform", "same", np.random.default_rng(5), "float32")
    assert all(p.dtype == np.float32 for p in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    f64 = init_params([5, 6, 2], "glorot_uniform", "same", np.random.default_rng(4), "float64")
    assert np.array_equal(f64[0].astype(np.float32), a[0])


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: get_initializer("he"), "unknown initializer 'he'; valid choices: constant"),
    (lambda: get_initializer("normal", sigma=1), "no parameter 'sigma'"),
    (lambda: get_initializer("normal", std=-1), "initializer.std"),
    (lambda: get_initializer("uniform", a=0), "initializer.a"),
    (lambda: init_params([2, 3], "he_normal", "zeros", "global"), "unknown rng 'global'"),
    (lambda: init_params([2, 3], "he_normal", "zeros", None, "float16"), "unknown dtype"),
])
def test_invalid_initializer_settings_raise_config_error(call, fragment):
    with pytest.raises(ConfigError) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)
