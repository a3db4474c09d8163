"""What the trainer tells the outside world, and early stopping built on it.

The trainer knows nothing of MLflow or Optuna: it emits events, and loggers or pruners
consume them. Any object with some of these methods works as a callback (the trainer looks
them up once per fit); subclassing `Callback` only saves writing the no-ops.
"""

from __future__ import annotations

import math

from mlplab.errors import ConfigError

MODES = ("min", "max")


class Callback:
    """No-op base class for trainer callbacks.

    `on_epoch_end` runs only at the logging cadence (and always on the last epoch), never
    on every epoch: on tiny networks a per-epoch call would cost more than the epoch.
    """

    def on_train_start(self, trainer) -> None:
        """Training is about to start (after a resume has been loaded)."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """An evaluation happened after `epoch` (1-based); metrics as {"test_loss": ...}."""

    def on_checkpoint(self, epoch: int, state) -> None:
        """A checkpoint of the state after `epoch` was written; `state` is its .npz path."""

    def on_train_end(self, status: str, reason: str | None) -> None:
        """Training ended: FINISHED (reason = stop reason, if stopped early), FAILED, KILLED."""


def check_mode(mode, key: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"{key}: invalid value {mode!r}; valid choices: {', '.join(MODES)}")
    return mode


class Best:
    """The best value seen of one metric, under "min" or "max"; NaN never counts."""

    def __init__(self, mode: str, min_delta: float = 0.0):
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = float(min_delta)
        self.value: float | None = None
        self.epoch: int | None = None

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.value is None:
            return True
        return self.sign * (self.value - value) > self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record `value` if it is an improvement; return whether it was."""
        if not self.improves(value):
            return False
        self.value, self.epoch = float(value), epoch
        return True

    def state(self) -> dict:
        return {"value": self.value, "epoch": self.epoch}

    def load(self, state: dict) -> None:
        self.value, self.epoch = state["value"], state["epoch"]


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience`
    consecutive evaluations.

    The metric is only known at evaluation epochs, so patience counts evaluations, not
    epochs: with `log_every=100` and `patience=10` training stops 1000 epochs after the
    last real improvement. That keeps one patience setting meaningful whatever the run
    length, since `log_every="auto"` spreads ~1000 evaluations over any number of epochs.
    With `restore_best_weights` the weights of the best evaluation are put back when
    training finishes (not when it fails or is killed: a killed run must resume from
    where it was).
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None, patience: int = 10,
                 min_delta: float = 0.0, restore_best_weights: bool = True):
        if mode is not None:
            check_mode(mode, "trainer.early_stopping.mode")
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ConfigError(f"trainer.early_stopping.patience: invalid value {patience!r}; "
                              "must be an integer >= 1")
        if not isinstance(min_delta, int | float) or min_delta < 0:
            raise ConfigError(f"trainer.early_stopping.min_delta: invalid value {min_delta!r}; "
                              "must be a number >= 0")
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)

    @classmethod
    def from_config(cls, value) -> EarlyStopping | None:
        """None/False/{} -> None; a mapping of this class's arguments -> EarlyStopping."""
        if value is None or value is False or isinstance(value, EarlyStopping):
            return value or None
        if not hasattr(value, "items"):
            raise ConfigError(f"trainer.early_stopping: invalid value {value!r}; must be null "
                              "or a mapping with monitor, mode, patience, min_delta, "
                              "restore_best_weights")
        settings = dict(value.items())
        if not settings or settings.pop("enabled", True) is False:
            return None
        valid = ("monitor", "mode", "patience", "min_delta", "restore_best_weights")
        unknown = sorted(set(settings) - set(valid))
        if unknown:
            raise ConfigError(f"trainer.early_stopping: unknown key {unknown[0]!r}; valid "
                              f"keys: {', '.join(sorted(valid))}, enabled")
        return cls(**settings)
