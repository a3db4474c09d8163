"""Each optimizer's first steps against its update equations, written out here by hand."""

import math

import numpy as np
import pytest

from mlplab.errors import ConfigError, DataError
from mlplab.nn import OPTIMIZERS, get_optimizer

STEPS = 3
LR = 0.05


def _problem(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(3, 4)), rng.normal(size=(3, 1))]
    grads = [[scale * rng.normal(size=p.shape) for p in params] for _ in range(STEPS)]
    return params, grads


def _tiled(arrays):
    """Copies of `arrays` as consecutive views of one flat buffer (the layout of MLP.params,
    which optimizers update in one pass)."""
    flat = np.concatenate([a.ravel() for a in arrays])
    views, offset = [], 0
    for a in arrays:
        views.append(flat[offset:offset + a.size].reshape(a.shape))
        offset += a.size
    return views


def _run(name, params, grads, layout="separate", **kwargs):
    """Params after each step. layout: separate arrays, "flat" params and grads, or
    "flat_params" (flat params, separate grads)."""
    params = _tiled(params) if layout != "separate" else [p.copy() for p in params]
    opt = get_optimizer(name, params, LR, **kwargs)
    history = []
    for gs in grads:
        opt.step(_tiled(gs) if layout == "flat" else [g.copy() for g in gs])
        history.append([p.copy() for p in params])
    return history


def _reference(params, grads, update, clip_norm=None, clip_value=None):
    """Run `update(i, t, p, g, state) -> new p` for every param and step, after clipping."""
    params = [p.copy() for p in params]
    states = [{} for _ in params]
    history = []
    for t, gs in enumerate(grads, start=1):
        gs = [g.copy() for g in gs]
        if clip_value is not None:
            gs = [np.minimum(np.maximum(g, -clip_value), clip_value) for g in gs]
        if clip_norm is not None:
            norm = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
            if clip_norm / (norm + 1e-6) < 1:
                gs = [g * (clip_norm / (norm + 1e-6)) for g in gs]
        params = [update(t, p, g, s) for p, g, s in zip(params, gs, states, strict=True)]
        history.append(params)
    return history


def _sgd(momentum=0.0, nesterov=False, wd=0.0):
    def update(t, p, g, s):
        g = g + wd * p
        if momentum:
            s["buf"] = g if t == 1 else momentum * s["buf"] + g
            g = g + momentum * s["buf"] if nesterov else s["buf"]
        return p - LR * g
    return update


def _rmsprop(alpha=0.99, eps=1e-8, momentum=0.0, centered=False, wd=0.0):
    def update(t, p, g, s):
        g = g + wd * p
        s["sq"] = alpha * s.get("sq", 0.0) + (1 - alpha) * g ** 2
        if centered:
            s["mean"] = alpha * s.get("mean", 0.0) + (1 - alpha) * g
            avg = np.sqrt(s["sq"] - s["mean"] ** 2) + eps
        else:
            avg = np.sqrt(s["sq"]) + eps
        if momentum:
            s["buf"] = momentum * s.get("buf", 0.0) + g / avg
            return p - LR * s["buf"]
        return p - LR * g / avg
    return update


def _adagrad(eps=1e-10, lr_decay=0.0, initial=0.0, wd=0.0):
    def update(t, p, g, s):
        g = g + wd * p
        s["sum"] = s.get("sum", initial) + g ** 2
        return p - LR / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s["sum"]) + eps)
    return update


def _adam(b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False, amsgrad=False):
    def update(t, p, g, s):
        if decoupled:
            p = p * (1 - LR * wd)
        else:
            g = g + wd * p
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g ** 2
        v = s["v"]
        if amsgrad:
            v = s["vmax"] = np.maximum(s.get("vmax", 0.0), v)
        m_hat = s["m"] / (1 - b1 ** t)
        return p - LR * m_hat / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
    return update


CASES = [
    ("sgd", {}, _sgd()),
    ("sgd", {"weight_decay": 0.1}, _sgd(wd=0.1)),
    ("sgd", {"momentum": 0.8}, _sgd(momentum=0.8)),
    ("momentum", {}, _sgd(momentum=0.9)),
    ("momentum", {"momentum": 0.5, "weight_decay": 0.01}, _sgd(momentum=0.5, wd=0.01)),
    ("nesterov", {}, _sgd(momentum=0.9, nesterov=True)),
    ("sgd", {"momentum": 0.7, "nesterov": True}, _sgd(momentum=0.7, nesterov=True)),
    ("rmsprop", {}, _rmsprop()),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05}, _rmsprop(0.9, 1e-6, wd=0.05)),
    ("rmsprop", {"momentum": 0.6}, _rmsprop(momentum=0.6)),
    ("rmsprop", {"centered": True, "momentum": 0.3}, _rmsprop(centered=True, momentum=0.3)),
    ("adagrad", {}, _adagrad()),
    ("adagrad", {"lr_decay": 0.5, "initial_accumulator_value": 0.2, "weight_decay": 0.1},
     _adagrad(lr_decay=0.5, initial=0.2, wd=0.1)),
    ("adam", {}, _adam()),
    ("adam", {"beta1": 0.8, "beta2": 0.9, "eps": 1e-5, "weight_decay": 0.1},
     _adam(0.8, 0.9, 1e-5, wd=0.1)),
    ("adam", {"amsgrad": True, "beta2": 0.5}, _adam(b2=0.5, amsgrad=True)),
    ("adamw", {}, _adam(wd=0.01, decoupled=True)),
    ("adamw", {"weight_decay": 0.3, "beta1": 0.5}, _adam(b1=0.5, wd=0.3, decoupled=True)),
]


def test_every_optimizer_has_a_hand_written_case():
    assert {name for name, *_ in CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize("layout", ["separate", "flat", "flat_params"])
@pytest.mark.parametrize(("name", "kwargs", "update"), CASES)
def test_first_steps_follow_the_update_equations(name, kwargs, update, layout):
    params, grads = _problem()
    actual = _run(name, params, grads, layout=layout, **kwargs)
    expected = _reference(params, grads, update)
    for step_actual, step_expected in zip(actual, expected, strict=True):
        for a, e in zip(step_actual, step_expected, strict=True):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


def test_plain_sgd_is_p_minus_lr_times_g_bit_for_bit():
    params, grads = _problem(1)
    expected = _reference(params, grads, _sgd())
    assert all(np.array_equal(a, e) for step_a, step_e in zip(_run("sgd", params, grads),
                                                               expected, strict=True)
               for a, e in zip(step_a, step_e, strict=True))


@pytest.mark.parametrize(("name", "update"), [("sgd", _sgd()), ("adam", _adam()),
                                              ("momentum", _sgd(momentum=0.9))])
@pytest.mark.parametrize("clip", [{"clip_norm": 1.5}, {"clip_value": 0.4},
                                  {"clip_norm": 0.5, "clip_value": 0.4}])
@pytest.mark.parametrize("layout", ["separate", "flat"])
def test_gradient_clipping(name, update, clip, layout):
    params, grads = _problem(2, scale=0.5)
    grads[1] = [g * 10 for g in grads[1]]  # clipping bites on this step, maybe not the others
    actual = _run(name, params, grads, layout=layout, **clip)
    expected = _reference(params, grads, update, **clip)
    unclipped = _reference(params, grads, update)
    for step_a, step_e in zip(actual, expected, strict=True):
        for a, e in zip(step_a, step_e, strict=True):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)
    assert not np.allclose(actual[-1][0], unclipped[-1][0])


def test_clip_norm_leaves_small_gradients_alone():
    params, grads = _problem(3, scale=1e-3)
    actual = _run("sgd", params, grads, clip_norm=10.0)
    expected = _reference(params, grads, _sgd())
    assert all(np.array_equal(a, e) for a, e in zip(actual[-1], expected[-1], strict=True))


@pytest.mark.parametrize("layout", ["separate", "flat"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_resume_continues_exactly(name, layout):
    params, grads = _problem(4)
    straight = _run(name, params, grads, weight_decay=0.01)[-1]
    first = _tiled(params) if layout == "flat" else [p.copy() for p in params]
    opt = get_optimizer(name, first, LR, weight_decay=0.01, param_names=["W1", "b1"])
    for gs in grads[:2]:
        opt.step([g.copy() for g in gs])
    state = opt.state_dict()
    assert state["step"] == 2 and all(
        k in ("step", "lr") or k.endswith((".W1", ".b1")) for k in state)
    assert all(state[k].shape == params[k.endswith(".b1")].shape for k in state if "." in k)
    resumed = _tiled(first) if layout == "flat" else [p.copy() for p in first]
    fresh = get_optimizer(name, resumed, LR, weight_decay=0.01, param_names=["W1", "b1"])
    fresh.load_state_dict(state)
    fresh.step([g.copy() for g in grads[2]])
    assert all(np.array_equal(a, b) for a, b in zip(resumed, straight, strict=True))
    with pytest.raises(DataError):
        fresh.load_state_dict({**state, "exp_avg.W2": np.zeros(3)})


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_params_and_state_stay_float32(name):
    params, grads = _problem(5)
    params = [p.astype(np.float32) for p in params]
    opt = get_optimizer(name, params, LR, weight_decay=0.01, clip_norm=1.0)
    for gs in grads:
        opt.step([g.astype(np.float32) for g in gs])
    assert all(p.dtype == np.float32 for p in params)
    assert all(v.dtype == np.float32 for v in opt.state_dict().values()
               if isinstance(v, np.ndarray))


def test_lr_is_settable_and_validated():
    params, grads = _problem(6)
    opt = get_optimizer("sgd", [p.copy() for p in params], LR)
    opt.lr = 0.5
    before = opt.params[0].copy()
    opt.step([g.copy() for g in grads[0]])
    np.testing.assert_array_equal(opt.params[0], before - 0.5 * grads[0][0])
    with pytest.raises(ConfigError, match="optimizer.lr"):
        opt.lr = 0.0


@pytest.mark.parametrize(("name", "lr", "kwargs", "fragment"), [
    ("adamax", 0.1, {}, "unknown optimizer 'adamax'; valid choices: adagrad, adam, adamw"),
    ("sgd", 0.0, {}, "optimizer.lr"),
    ("sgd", -1, {}, "optimizer.lr"),
    ("adam", 0.1, {"betas": (0.9, 0.99)}, "'adam' has no parameter 'betas'"),
    ("adam", 0.1, {"momentum": 0.9}, "no parameter 'momentum'"),
    ("adam", 0.1, {"beta1": 1.0}, "optimizer.beta1"),
    ("sgd", 0.1, {"nesterov": True}, "optimizer.nesterov"),
    ("sgd", 0.1, {"momentum": -0.5}, "optimizer.momentum"),
    ("rmsprop", 0.1, {"weight_decay": -1}, "optimizer.weight_decay"),
    ("sgd", 0.1, {"clip_norm": 0}, "optimizer.clip_norm"),
])
def test_invalid_optimizer_settings_raise_one_line_config_error(name, lr, kwargs, fragment):
    params, _ = _problem()
    with pytest.raises(ConfigError) as info:
        get_optimizer(name, params, lr, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
