"""The epoch loop: learning, cadence, train-metric modes, targets, batching and shuffling."""

import numpy as np
import pytest
from training_toys import (
    Recorder,
    classifier_model,
    make_classification,
    make_regression,
    regression_model,
)

from mlplab.errors import ConfigError
from mlplab.nn import MLP, get_optimizer
from mlplab.training import Trainer, resolve_log_every
from mlplab.training.evaluation import encode_targets


def test_full_batch_training_decreases_the_loss():
    ds = make_classification()
    model, opt = classifier_model(lr=0.5)
    result = Trainer(model, opt, epochs=200, log_every=50).fit(ds)
    assert result.status == "FINISHED" and result.reason is None
    first, last = result.history["train_loss"][0][1], result.history["train_loss"][-1][1]
    assert last < 0.5 * first
    assert result.metrics["test_accuracy"] > 0.8
    assert result.epochs_run == 200


def test_evaluation_cadence_is_first_multiples_and_last():
    recorder = Recorder()
    ds = make_regression()
    model, opt = regression_model()
    Trainer(model, opt, epochs=25, log_every=10, callbacks=[recorder]).fit(ds)
    assert recorder.epochs == [1, 10, 20, 25]
    epochs = [e for e, _ in recorder.trainer.history["test_loss"]]
    assert epochs == [1, 10, 20, 25]
    assert recorder.events[0] == ("start",) and recorder.events[-1] == ("end", "FINISHED", None)


@pytest.mark.parametrize("epochs", [1, 20, 999, 1000, 1001, 20_000, 1_000_000])
def test_auto_cadence_keeps_about_a_thousand_points(epochs):
    every = resolve_log_every("auto", epochs)
    evaluated = {1, epochs} | set(range(every, epochs + 1, every))
    assert len(evaluated) <= 1002
    # the smallest such cadence: one less would exceed 1000 multiples
    assert every == 1 or epochs // (every - 1) > 1000


def test_classifier_metric_keys_with_validation_split():
    ds = make_classification(val=True)
    model, opt = classifier_model()
    result = Trainer(model, opt, epochs=3, metrics=["edenau_loss"]).fit(ds)
    assert set(result.metrics) == {f"{s}_{m}" for s in ("train", "val", "test")
                                   for m in ("loss", "accuracy", "edenau_loss")}
    assert result.monitor == "val_loss"


def _manual_loss(model, X, Y):
    """The model's loss written out from its arrays (softmax cross-entropy)."""
    A = X.T
    for layer in model.layers[:-1]:
        A = np.maximum(layer.W @ A + layer.b, 0.0)
    Z = model.layers[-1].W @ A + model.layers[-1].b
    Z = Z - Z.max(axis=0)
    log_softmax = Z - np.log(np.exp(Z).sum(axis=0))
    return float(-np.mean(np.sum(Y * log_softmax, axis=0)))


def _one_hot(labels, k):
    return np.eye(k)[labels].T


def test_pre_and_post_update_train_metrics():
    ds = make_classification()
    Y = _one_hot(ds.y_train, 3)
    model, opt = classifier_model()
    before = _manual_loss(model, ds.X_train, Y)
    pre = Trainer(model, opt, epochs=1, train_metrics="pre_update").fit(ds)
    after = _manual_loss(model, ds.X_train, Y)
    assert pre.metrics["train_loss"] == pytest.approx(before, rel=1e-12)

    model, opt = classifier_model()
    post = Trainer(model, opt, epochs=1, train_metrics="post_update").fit(ds)
    assert post.metrics["train_loss"] == pytest.approx(after, rel=1e-12)
    assert before != pytest.approx(after)
    # full batch defaults to pre_update (free), mini-batch to post_update
    model, opt = classifier_model()
    assert Trainer(model, opt, epochs=1).fit(ds).metrics["train_loss"] == pytest.approx(before)


def test_running_train_metrics_average_the_batches_before_each_update():
    ds = make_classification(n=120)
    Y = _one_hot(ds.y_train, 3)
    oracle, oracle_opt = classifier_model()
    batch_losses = []
    for start in (0, 40, 80):  # no shuffling: batches in order
        Xb, Yb = ds.X_train[start:start + 40], Y[:, start:start + 40]
        batch_losses.append(_manual_loss(oracle, Xb, Yb))
        # the trainer's batch layout (C-contiguous features x samples), so the weights can
        # be compared bit for bit whichever BLAS kernel the CPU gets
        oracle.forward(np.ascontiguousarray(Xb.T))
        oracle_opt.step(oracle.backward(np.ascontiguousarray(Yb)))
    model, opt = classifier_model()
    result = Trainer(model, opt, epochs=1, batch_size=40, shuffle=False,
                     train_metrics="running").fit(ds)
    assert result.metrics["train_loss"] == pytest.approx(np.mean(batch_losses), rel=1e-12)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, oracle.state_dict()[name])


def test_target_encoding():
    labels = np.array([2, 0, 1, 2])
    onehot = encode_targets(labels, "multiclass", 3, np.float32)
    assert onehot.dtype == np.float32 and onehot.shape == (3, 4)
    np.testing.assert_array_equal(onehot, [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]])
    binary = encode_targets(np.array([1, 0, 1]), "binary", 1, np.float64)
    np.testing.assert_array_equal(binary, [[1.0, 0.0, 1.0]])
    y = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(encode_targets(y, "regression", 2, np.float64), y.T)


def test_float32_stays_float32():
    ds = make_classification()
    model = MLP([2, 8, 3], ["relu", "softmax"], "softmax_cross_entropy", dtype="float32")
    opt = get_optimizer("adam", model.params, lr=0.01)
    result = Trainer(model, opt, epochs=5, batch_size=32).fit(ds)
    assert result.status == "FINISHED"
    assert all(p.dtype == np.float32 for p in model.params)


def _fit_minibatch(seed, shuffle=True, epochs=4):
    ds = make_classification()
    model, opt = classifier_model()
    Trainer(model, opt, epochs=epochs, batch_size=25, shuffle=shuffle, seed=seed).fit(ds)
    return model.state_dict()


def test_shuffling_is_seeded():
    a, b, c = _fit_minibatch(1), _fit_minibatch(1), _fit_minibatch(2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_legacy_shuffle_replays_an_in_place_reshuffling_loop():
    """The arask loop: each epoch np.random.shuffle an index, reorder the data arrays in
    place, then step through batches, dropping the incomplete last batch.

    Bit-exact because the oracle makes the same BLAS calls on the same layout as the
    trainer: its batches are C-contiguous (features, samples) arrays, as `X.take(idx,
    axis=1)` gives the trainer. Passing the transposed view `xb.T` instead lets OpenBLAS
    take another kernel path for the same product (on SkylakeX, 2 of 16 weights then
    differ by 1 ulp), which says nothing about the shuffling this test is about."""
    ds = make_classification(n=110)
    Y = _one_hot(ds.y_train, 3)
    oracle, oracle_opt = classifier_model()
    np.random.seed(7)  # noqa: NPY002
    x, y = ds.X_train.copy(), Y.T.copy()
    for _ in range(3):
        idx = np.arange(x.shape[0])
        np.random.shuffle(idx)  # noqa: NPY002
        x, y = x[idx], y[idx]
        for batch in range(x.shape[0] // 25):
            xb, yb = x[batch * 25:(batch + 1) * 25], y[batch * 25:(batch + 1) * 25]
            oracle.forward(np.ascontiguousarray(xb.T))
            oracle_opt.step(oracle.backward(np.ascontiguousarray(yb.T)))
    model, opt = classifier_model()
    np.random.seed(7)  # noqa: NPY002
    Trainer(model, opt, epochs=3, batch_size=25, shuffle="legacy", drop_last=True).fit(ds)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, oracle.state_dict()[name])


def test_request_stop_ends_after_that_epoch():
    class StopAt:
        def on_train_start(self, trainer):
            self.trainer = trainer

        def on_epoch_end(self, epoch, metrics):
            if epoch == 6:
                self.trainer.request_stop("pruned at epoch 6")

    ds = make_regression()
    model, opt = regression_model()
    result = Trainer(model, opt, epochs=50, log_every=3, callbacks=[StopAt()]).fit(ds)
    assert result.status == "FINISHED"
    assert result.stop_reason == result.reason == "pruned at epoch 6"
    assert result.epochs_run == 6


def test_reduce_on_plateau_gets_the_monitored_metric():
    from mlplab.nn.schedules import ReduceOnPlateau

    class Recording(ReduceOnPlateau):
        calls = []

        def lr_at(self, epoch, metric=None):
            self.calls.append((epoch, metric))
            return super().lr_at(epoch, metric)

    ds = make_regression()
    model, opt = regression_model()
    schedule = Recording(0.05, patience=1)
    result = Trainer(model, opt, epochs=7, log_every=3, schedule=schedule,
                     monitor="train_loss").fit(ds)
    evaluated = dict(result.history["train_loss"])  # epochs 1, 3, 6, 7
    # lr_at takes 0-based epochs; the metric arrives on the epoch after an evaluation
    expected = [(e - 1, evaluated.get(e - 1)) for e in range(1, 8)]
    assert Recording.calls == expected


def test_no_output_when_stderr_is_not_a_terminal(capfd):
    ds = make_regression()
    model, opt = regression_model()
    Trainer(model, opt, epochs=30, log_every=1).fit(ds)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("kwargs, key", [
    ({"log_every": 0}, "trainer.log_every"),
    ({"log_every": "often"}, "trainer.log_every"),
    ({"batch_size": 0}, "trainer.batch_size"),
    ({"shuffle": "yes"}, "trainer.shuffle"),
    ({"train_metrics": "before"}, "trainer.train_metrics"),
    ({"monitor": "test_accuracy"}, "trainer.monitor"),
    ({"mode": "up"}, "trainer.mode"),
    ({"metrics": ["f1"]}, "trainer.metrics"),
    ({"early_stopping": {"patience": 0}}, "trainer.early_stopping.patience"),
    ({"early_stopping": {"patients": 3}}, "trainer.early_stopping"),
])
def test_bad_settings_raise_one_line_config_errors(kwargs, key):
    ds = make_regression()  # a regressor has no accuracy to monitor
    model, opt = regression_model()
    with pytest.raises(ConfigError) as info:
        Trainer(model, opt, epochs=2, **kwargs).fit(ds)
    message = str(info.value)
    assert message.startswith(key + ":") and "\n" not in message


def test_model_and_dataset_shapes_must_agree():
    model, opt = regression_model()
    with pytest.raises(ConfigError, match="architecture"):
        Trainer(model, opt, epochs=1).fit(make_classification())


def test_each_epoch_runs_one_training_step_per_batch():
    ds = make_regression(n=150)
    model, opt = regression_model()
    Trainer(model, opt, epochs=3, batch_size=40, log_every=2).fit(ds)
    assert opt.t == 3 * 4  # ceil(150 / 40) batches per epoch
    model, opt = regression_model()
    Trainer(model, opt, epochs=3, batch_size=40, drop_last=True).fit(ds)
    assert opt.t == 3 * 3


def test_recorder_sees_the_same_metrics_as_the_result():
    recorder = Recorder()
    ds = make_classification()
    model, opt = classifier_model()
    result = Trainer(model, opt, epochs=4, callbacks=[recorder]).fit(ds)
    last = [e for e in recorder.events if e[0] == "epoch"][-1]
    assert last[1] == 4 and last[2] == result.metrics
