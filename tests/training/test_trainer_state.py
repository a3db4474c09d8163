"""Early stopping, checkpoints, resuming, divergence and signals."""

import os
import signal

import numpy as np
import pytest
from training_toys import (
    Recorder,
    classifier_model,
    make_classification,
    make_regression,
    regression_model,
)

from mlplab.errors import DataError
from mlplab.nn import get_schedule
from mlplab.training import EarlyStopping, Trainer, load_checkpoint


def _worsening_fit(callbacks=(), log_every=1, **early):
    """A run whose learning rate jumps 30x after epoch 30: the test loss bottoms out,
    then climbs. Returns (model, result)."""
    model, opt = regression_model(lr=0.05)
    schedule = get_schedule("step", 0.05, step_size=30, gamma=30.0)
    trainer = Trainer(model, opt, epochs=80, log_every=log_every, schedule=schedule,
                      early_stopping=EarlyStopping(**early) if early else None,
                      callbacks=list(callbacks))
    return model, trainer.fit(make_regression())


def test_early_stopping_restores_the_best_weights():
    recorder = Recorder()
    model, result = _worsening_fit([recorder], monitor="test_loss", patience=5)
    losses = dict(result.history["test_loss"])
    best_epoch = min(losses, key=losses.get)
    assert 20 < best_epoch < 40  # the schedule really made later epochs worse
    assert result.status == "FINISHED"
    assert result.epochs_run == best_epoch + 5
    assert "early stopping" in result.stop_reason and "test_loss" in result.stop_reason
    assert result.best_epoch == best_epoch and result.best_value == losses[best_epoch]
    assert result.restored_best_weights and result.objective == losses[best_epoch]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, recorder.weights[best_epoch][name])
    assert not np.array_equal(model.params[0], recorder.weights[result.epochs_run]["W1"])


def test_early_stopping_without_restoring_keeps_the_last_weights():
    recorder = Recorder()
    model, result = _worsening_fit([recorder], monitor="test_loss", patience=5,
                                   restore_best_weights=False)
    assert not result.restored_best_weights
    np.testing.assert_array_equal(model.params[0], recorder.weights[result.epochs_run]["W1"])
    assert result.objective == result.metrics["test_loss"]


def _expected_stop(losses, patience, min_delta):
    """Early stopping written out over a full run's evaluations: (stop epoch, best epoch)."""
    gain, stale = None, 0
    for epoch, value in losses:
        if gain is None or value < gain - min_delta:
            gain, stale = value, 0
            continue
        stale += 1
        if stale >= patience:
            seen = [(v, e) for e, v in losses if e <= epoch]
            return epoch, min(seen)[1]
    return None


@pytest.mark.parametrize("patience, min_delta, log_every", [
    (2, 0.0, 1), (2, 0.05, 1), (4, 0.02, 1), (2, 0.0, 3), (3, 0.1, 2)])
def test_stopping_epoch_follows_patience_and_min_delta(patience, min_delta, log_every):
    _, full = _worsening_fit(log_every=log_every)
    stop, best = _expected_stop(full.history["test_loss"], patience, min_delta)
    recorder = Recorder()
    model, result = _worsening_fit([recorder], log_every=log_every, monitor="test_loss",
                                   patience=patience, min_delta=min_delta)
    assert (result.epochs_run, result.best_epoch) == (stop, best)
    np.testing.assert_array_equal(model.params[0], recorder.weights[best]["W1"])


def test_checkpoints_at_the_cadence_hold_the_state(tmp_path):
    recorder = Recorder()
    model, opt = classifier_model(optimizer="adam", lr=0.01)
    Trainer(model, opt, epochs=12, checkpoint_every=5, checkpoint_dir=tmp_path,
            callbacks=[recorder]).fit(make_classification())
    assert sorted(recorder.checkpoints) == [5, 10]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_000005.npz", "epoch_000010.npz"]
    path, live = recorder.checkpoints[10]
    with np.load(path, allow_pickle=False) as data:  # no pickled objects inside
        assert "meta" in data.files
    state = load_checkpoint(path)
    assert state.epoch == 10
    for name in live:
        np.testing.assert_array_equal(state.model[name], live[name])
    assert int(state.optimizer["step"]) == 10  # full batch: one Adam step per epoch


def _fit(epochs, ds, *, resume_from=None, checkpoint_dir=None, checkpoint_every=None,
         init_seed=0, history=None, **kw):
    model, opt = classifier_model(seed=init_seed, optimizer="adam", lr=0.02)
    # min_delta makes the plateau schedule halve the rate during the run (state to resume)
    schedule = get_schedule("reduce_on_plateau", 0.02, patience=0, factor=0.5, min_delta=0.03)
    trainer = Trainer(model, opt, epochs=epochs, schedule=schedule, log_every=3,
                      checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
                      monitor="train_loss", **kw)
    return model, trainer.fit(ds, resume_from=resume_from, history=history)


@pytest.mark.parametrize("batching", [
    {},                                            # full batch
    {"batch_size": 16, "shuffle": True, "seed": 3},  # mini-batches, Generator shuffling
    {"batch_size": 16, "shuffle": "legacy"},          # the global np.random stream
])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, batching):
    ds = make_classification(n=100)
    np.random.seed(11)  # noqa: NPY002 (only the legacy case reads it)
    straight, full = _fit(20, ds, **batching)

    np.random.seed(11)  # noqa: NPY002
    _, first = _fit(8, ds, checkpoint_dir=tmp_path, checkpoint_every=8, **batching)
    np.random.seed(999)  # noqa: NPY002 (the checkpoint must restore the stream)
    # The history comes back from where the first fit's evaluations were recorded (the
    # checkpoint holds none), its end-of-run evaluation at epoch 8 included: the resumed
    # fit keeps what precedes the checkpoint.
    resumed, rest = _fit(20, ds, resume_from=tmp_path / "epoch_000008.npz", init_seed=5,
                         history=first.history, **batching)
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value)
    assert rest.history == full.history
    assert rest.epochs_run == 20


def test_resume_rejects_a_checkpoint_at_or_past_the_end(tmp_path):
    ds = make_regression()
    model, opt = regression_model()
    Trainer(model, opt, epochs=4, checkpoint_every=4, checkpoint_dir=tmp_path).fit(ds)
    model, opt = regression_model()
    with pytest.raises(Exception, match="trainer.epochs"):
        Trainer(model, opt, epochs=4).fit(ds, resume_from=tmp_path / "epoch_000004.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        Trainer(model, opt, epochs=9).fit(ds, resume_from=tmp_path / "junk.npz")


def test_divergence_fails_with_metric_and_epoch():
    recorder = Recorder()
    model, opt = regression_model(lr=50.0)
    result = Trainer(model, opt, epochs=500, log_every=5, callbacks=[recorder]).fit(
        make_regression())
    assert result.status == "FAILED"
    key, epoch = result.reason.split(" is ")[0], result.epochs_run
    assert key.endswith("_loss") and f"at epoch {epoch}" in result.reason
    assert epoch < 500 and epoch % 5 == 0 or epoch == 1
    assert not np.isfinite(result.metrics[key])
    assert recorder.events[-1] == ("end", "FAILED", result.reason)
    finite = [v for e, v in result.history["train_loss"] if e < epoch]
    assert finite and all(np.isfinite(finite))


class SignalAt:
    """Sends a signal to this very process at one evaluation."""

    def __init__(self, epoch, signum):
        self.epoch, self.signum = epoch, signum

    def on_epoch_end(self, epoch, metrics):
        if epoch == self.epoch:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_epoch_checkpoints_and_returns_killed(tmp_path, signum):
    before = signal.getsignal(signum)
    recorder = Recorder()
    ds = make_regression()
    model, opt = regression_model()
    result = Trainer(model, opt, epochs=1000, log_every=4, checkpoint_dir=tmp_path,
                     callbacks=[SignalAt(8, signum), recorder]).fit(ds)
    assert signal.getsignal(signum) is before  # handlers restored
    assert result.status == "KILLED" and signal.Signals(signum).name in result.reason
    assert result.epochs_run == 8 and opt.t == 8
    assert sorted(recorder.checkpoints) == [8]
    assert result.checkpoint == str(tmp_path / "epoch_000008.npz")
    # and the run continues from there as if nothing happened
    straight, straight_opt = regression_model()
    Trainer(straight, straight_opt, epochs=20, log_every=4).fit(ds)
    resumed, resumed_opt = regression_model(seed=1)
    Trainer(resumed, resumed_opt, epochs=20, log_every=4).fit(ds, resume_from=result.checkpoint)
    np.testing.assert_array_equal(resumed.params[0], straight.params[0])


def _checkpointed_fit(tmp_path, epochs, **kw):
    model, opt = classifier_model(optimizer="adam", lr=0.01)
    Trainer(model, opt, epochs=epochs, batch_size=16, log_every=1, checkpoint_every=50,
            checkpoint_dir=tmp_path, metrics=["mse"] if kw.pop("mse", False) else (),
            **kw).fit(make_classification())
    return model, opt


def test_checkpoint_size_does_not_grow_with_the_epochs(tmp_path):
    # An evaluation every epoch: a checkpoint holding the metric history would grow by
    # about 100 bytes an epoch (tens of kilobytes between the first and the last).
    model, opt = _checkpointed_fit(tmp_path, 1000)
    first, last = (tmp_path / "epoch_000050.npz").stat().st_size, \
        (tmp_path / "epoch_001000.npz").stat().st_size
    # The JSON part varies by a few bytes (the digits of numbers), nothing more.
    assert abs(last - first) < 256, (first, last)
    state_bytes = sum(np.asarray(v).nbytes for v in model.state_dict().values()) + sum(
        np.asarray(v).nbytes for v in opt.state_dict().values())
    order_bytes = 120 * 2  # 120 training samples as uint16
    # zip headers per array and the JSON meta (RNG state, schedule, last metrics): a few KiB
    assert last < state_bytes + order_bytes + 8192, (last, state_bytes)
    assert "history" not in load_checkpoint(tmp_path / "epoch_001000.npz").meta


def test_resume_keeps_the_given_history_up_to_the_checkpoint(tmp_path):
    _checkpointed_fit(tmp_path, 120)
    ds = make_classification()
    recorded = {"train_loss": [(e, 1.0 / e) for e in range(1, 121)]}  # what a store holds
    model, opt = classifier_model(optimizer="adam", lr=0.01)
    result = Trainer(model, opt, epochs=103, batch_size=16, log_every=1).fit(
        ds, resume_from=tmp_path / "epoch_000100.npz", history=recorded)
    losses = result.history["train_loss"]
    assert losses[:100] == [(e, 1.0 / e) for e in range(1, 101)]  # kept up to epoch 100
    assert [e for e, _ in losses[100:]] == [101, 102, 103]  # evaluated again, not copied
    assert all(v != 1.0 / e for e, v in losses[100:])


@pytest.mark.parametrize("change, message", [
    ({"hidden": 5}, r"model state W1 is float64\[8, 2\], this model's float64\[5, 2\]"),
    ({"dtype": "float32"}, r"model state W1 is float64\[8, 2\], this model's float32\[8, 2\]"),
    ({"optimizer": "sgd"}, r"its optimizer state does not match this optimizer's \(only in "
                           r"the checkpoint: exp_avg\.0, .* and 4 more; only here: nothing\)"),
    ({"n": 100}, r"the run trained on 120 samples, this dataset has 100"),
])
def test_resume_refuses_a_checkpoint_of_another_model_optimizer_or_dataset(tmp_path, change,
                                                                           message):
    from mlplab.errors import ConfigError
    from mlplab.nn import MLP, get_optimizer

    _checkpointed_fit(tmp_path, 50)
    model = MLP([2, change.get("hidden", 8), 3], ["relu", "softmax"], "softmax_cross_entropy",
                dtype=change.get("dtype", "float64"))
    opt = get_optimizer(change.get("optimizer", "adam"), model.params, lr=0.01)
    ds = make_classification(n=change.get("n", 120))
    with pytest.raises(ConfigError, match=r"^trainer\.resume: .*epoch_000050\.npz: " + message):
        Trainer(model, opt, epochs=60, batch_size=16).fit(
            ds, resume_from=tmp_path / "epoch_000050.npz")
