"""The trainer with dropout and batch norm on: a resumed fit is the uninterrupted one bit
for bit, the reported test metrics come from the evaluation path, and multilabel targets
train with exact-match accuracy."""

import numpy as np
import pytest
from training_toys import make_classification

from mlplab.data import Dataset
from mlplab.nn import MLP, get_optimizer
from mlplab.nn.metrics import exact_match_accuracy
from mlplab.training import Trainer


def _model(seed=0, loss="softmax_cross_entropy", outputs=3, **kw):
    model = MLP([2, 16, 8, outputs], ["relu", "tanh", "softmax" if outputs > 1 and loss.startswith(
        "softmax") else "sigmoid"], loss, seed=seed, norm="batch", dropout=[0.3, 0.2], **kw)
    opt = get_optimizer("adam", model.params, 0.02, param_names=model.param_names,
                        weight_decay=1e-3, decay_biases=False, max_norm=3.0)
    return model, opt


def _layer_model(seed=0):
    model = MLP([2, 16, 8, 3], ["relu", "tanh", "softmax"], "softmax_cross_entropy", seed=seed,
                norm="layer", dropout=0.3)
    return model, get_optimizer("sgd", model.params, 0.1, momentum=0.9,
                                param_names=model.param_names)


FACTORIES = {"batch": lambda seed=0: _model(seed, norm_momentum=0.2), "layer": _layer_model}


@pytest.mark.parametrize("norm", list(FACTORIES))
def test_resume_with_dropout_and_norm_gives_the_uninterrupted_weights(tmp_path, norm):
    ds = make_classification(n=100)
    kw = dict(batch_size=16, shuffle=True, seed=3, log_every=3)
    straight, opt = FACTORIES[norm]()
    full = Trainer(straight, opt, epochs=12, **kw).fit(ds)

    first, opt = FACTORIES[norm]()
    before = Trainer(first, opt, epochs=5, checkpoint_every=5, checkpoint_dir=tmp_path,
                     **kw).fit(ds)
    resumed, opt = FACTORIES[norm](seed=9)  # other initial weights: the checkpoint restores
    # The checkpoint holds no metric history: the resumed fit is given the first fit's.
    rest = Trainer(resumed, opt, epochs=12, **kw).fit(
        ds, resume_from=tmp_path / "epoch_000005.npz", history=before.history)
    expected = straight.state_dict()
    assert set(resumed.state_dict()) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    assert rest.history == full.history


def _eval_reference(model, X):
    """The network's evaluation from its state: running statistics, no dropout."""
    state = model.state_dict()
    A = X.T
    for k, act in ((1, lambda z: np.maximum(z, 0)), (2, np.tanh)):
        Z = state[f"W{k}"] @ A + state[f"b{k}"]
        Z = (Z - state[f"norm{k}_running_mean"]) / np.sqrt(state[f"norm{k}_running_var"] + 1e-5)
        A = act(Z * state[f"norm{k}_gain"] + state[f"norm{k}_bias"])
    Z = state["W3"] @ A + state["b3"]
    return np.exp(Z - Z.max(axis=0)) / np.exp(Z - Z.max(axis=0)).sum(axis=0)


def test_reported_test_metrics_come_from_the_evaluation_path():
    ds = make_classification(n=100)
    model, opt = _model()
    result = Trainer(model, opt, epochs=6, batch_size=20, seed=1).fit(ds)
    P = _eval_reference(model, ds.X_test)
    loss = -np.mean(np.log(P[ds.y_test, np.arange(ds.n_test)]))
    assert result.metrics["test_loss"] == pytest.approx(loss, rel=1e-10)
    assert result.metrics["test_accuracy"] == pytest.approx(
        np.mean(P.argmax(axis=0) == ds.y_test))


def _multilabel(n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(axis=1) > 0.5]).astype(np.int64)
    return Dataset("toy_multilabel", "multilabel", X[:120], Y[:120], X[120:], Y[120:])


def test_multilabel_targets_train_with_binary_cross_entropy_and_exact_match_accuracy():
    ds = _multilabel()
    model, opt = _model(loss="binary_cross_entropy", outputs=3)
    result = Trainer(model, opt, epochs=40, batch_size=20, seed=1).fit(ds)
    A = model.predict(ds.X_test.T)
    assert result.metrics["test_accuracy"] == pytest.approx(
        exact_match_accuracy(A, ds.y_test.T))
    assert result.metrics["test_accuracy"] > 0.8  # three separable labels
    assert result.history["train_loss"][-1][1] < result.history["train_loss"][0][1]
