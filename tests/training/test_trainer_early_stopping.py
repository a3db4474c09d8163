"""Early stopping keeps its own state: counters and best weights survive a checkpoint, and
a resumed run stops where the uninterrupted one did, with the same weights."""

import numpy as np
import pytest
from training_toys import make_regression, regression_model

from mlplab.nn import MLP, get_schedule
from mlplab.training import EarlyStopping, Trainer, load_checkpoint, save_checkpoint


def _fit(*, seed=0, resume_from=None, checkpoint_dir=None, checkpoint_every=None):
    """The loss bottoms out, then climbs (the rate jumps 30x after epoch 30)."""
    model, opt = regression_model(seed=seed, lr=0.05)
    schedule = get_schedule("step", 0.05, step_size=30, gamma=30.0)
    trainer = Trainer(model, opt, epochs=80, log_every=1, schedule=schedule,
                      early_stopping=EarlyStopping(monitor="test_loss", patience=5),
                      checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
    return model, trainer.fit(make_regression(), resume_from=resume_from)


def _old_format(path, target):
    """The checkpoint as written before EarlyStopping held its state: [gain, best, stale]."""
    state = load_checkpoint(path)
    new = state.meta["early_stopping"]
    state.meta["early_stopping"] = [new["gain"], new["best"], new["stale"]]
    return save_checkpoint(target, state)


@pytest.mark.parametrize("old_format", [False, True])
def test_a_resumed_run_stops_where_the_straight_one_did(tmp_path, old_format):
    straight, full = _fit()
    assert full.stop_reason and full.restored_best_weights
    middle = full.epochs_run - 2  # after the best epoch, with some patience used up
    assert middle > full.best_epoch
    _fit(checkpoint_dir=tmp_path, checkpoint_every=middle)
    checkpoint = tmp_path / f"epoch_{middle:06d}.npz"
    assert load_checkpoint(checkpoint).meta["early_stopping"]["stale"] == middle - full.best_epoch
    if old_format:
        checkpoint = _old_format(checkpoint, tmp_path / "old.npz")
    resumed, rest = _fit(seed=5, resume_from=checkpoint)
    assert (rest.epochs_run, rest.best_epoch, rest.stop_reason) == (
        full.epochs_run, full.best_epoch, full.stop_reason)
    assert rest.restored_best_weights
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value)


def _feed(stopping, model, losses, start=1):
    return [stopping.update(epoch, {"test_loss": loss}, model)
            for epoch, loss in enumerate(losses, start)]


def test_state_dict_carries_the_counters_and_the_best_weights():
    model = MLP([2, 1], ["identity"], "mse")
    losses = [1.0, 0.5, 0.6, 0.7, 0.45, 0.8, 0.9, 0.95]
    whole = EarlyStopping(patience=4, min_delta=0.1)
    whole.start("test_loss", "min")
    reasons = _feed(whole, model, losses)
    # 0.45 is the best value but not a gain of more than 0.1 over 0.5: patience runs on
    assert reasons[:5] == [None] * 5 and reasons[5].startswith("early stopping: test_loss")
    assert (whole.best.epoch, whole.gain.epoch) == (5, 2)

    first = EarlyStopping(patience=4, min_delta=0.1)
    first.start("test_loss", "min")
    _feed(first, model, losses[:4])
    saved, weights = first.state_dict(), first.best_weights
    second = EarlyStopping(patience=4, min_delta=0.1)
    second.start("test_loss", "min")
    second.load_state_dict(saved, weights)
    assert second.stale == 2 and second.best_weights is weights
    assert _feed(second, model, losses[4:], start=5) == reasons[4:]


def test_restore_puts_back_the_best_weights_unless_the_last_evaluation_was_best():
    model = MLP([2, 1], ["identity"], "mse")
    best = model.state_dict()
    stopping = EarlyStopping(patience=2)
    stopping.start("test_loss", "min")
    stopping.update(1, {"test_loss": 0.3}, model)
    model.params[0][...] += 1.0
    stopping.update(2, {"test_loss": 0.4}, model)
    assert not stopping.restore(model, last_epoch=1)  # the best is the last: nothing to do
    assert stopping.restore(model, last_epoch=2)
    np.testing.assert_array_equal(model.params[0], best["W1"])
