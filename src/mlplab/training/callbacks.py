"""What the trainer tells the outside world, and early stopping built on it.

The trainer knows nothing of MLflow or Optuna: it emits events, and loggers or pruners
consume them. Any object with some of these methods works as a callback (the trainer looks
them up once per fit); subclassing `Callback` only saves writing the no-ops.
"""

from __future__ import annotations

import math

from mlplab.constraints import MODE, NON_NEGATIVE, Constrained, Interval, Nullable
from mlplab.errors import ConfigError


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


class EarlyStopping(Constrained):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience`
    consecutive evaluations.

    The metric is only known at evaluation epochs, so patience counts evaluations, not
    epochs: with `log_every=100` and `patience=10` training stops 1000 epochs after the
    last real improvement. That keeps one patience setting meaningful whatever the run
    length, since `log_every="auto"` spreads ~1000 evaluations over any number of epochs.
    With `restore_best_weights` the weights of the best evaluation are put back when
    training finishes (not when it fails or is killed: a killed run must resume from
    where it was).

    The object holds the state of one fit too: `start` clears it, `update` feeds it one
    evaluation, `state_dict`/`load_state_dict` carry it through a checkpoint (the best
    weights travel as the checkpoint's `best/<name>` arrays).
    """

    prefix = "trainer.early_stopping"
    constraints = {"mode": Nullable(MODE), "patience": Interval(int, 1),
                   "min_delta": NON_NEGATIVE}
    KEYS = ("monitor", "mode", "patience", "min_delta", "restore_best_weights")

    def __init__(self, monitor: str | None = None, mode: str | None = None, patience: int = 10,
                 min_delta: float = 0.0, restore_best_weights: bool = True):
        self.monitor = monitor
        self.mode = self.checked("mode", mode)
        self.patience = self.checked("patience", patience)
        self.min_delta = self.checked("min_delta", min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.start(monitor or "", mode or "min")

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
        unknown = sorted(set(settings) - set(cls.KEYS))
        if unknown:
            raise ConfigError(f"trainer.early_stopping: unknown key {unknown[0]!r}; valid "
                              f"keys: {', '.join(sorted(cls.KEYS))}, enabled")
        return cls(**settings)

    # ------------------------------------------------------------------- one fit's state
    def start(self, monitor: str, mode: str) -> None:
        """Begin a fit from a clean slate, watching this object's `monitor` and `mode` or,
        where they are None, the trainer's."""
        self.key = self.monitor or monitor
        mode = self.mode or mode
        self.gain = Best(mode, self.min_delta)  # the last improvement by more than min_delta
        self.best = Best(mode)  # the best value, whatever the gain that reached it
        self.stale = 0  # evaluations since the last improvement by more than min_delta
        self.best_weights: dict | None = None

    def update(self, epoch: int, metrics: dict, model) -> str | None:
        """Take one evaluation into account; return why training should stop, or None.
        The weights kept are those of the best value (copied from `model`)."""
        value = metrics[self.key]
        if self.best.update(epoch, value) and self.restore_best_weights:
            self.best_weights = model.state_dict()
        if self.gain.update(epoch, value):
            self.stale = 0
            return None
        self.stale += 1
        if self.stale < self.patience:
            return None
        best = ("" if self.best.value is None
                else f" (best {self.best.value:.6g} at epoch {self.best.epoch})")
        return f"early stopping: {self.key} did not improve for {self.stale} evaluations{best}"

    def restore(self, model, last_epoch: int | None) -> bool:
        """Put the best weights back into `model` unless the last evaluation (at
        `last_epoch`) was the best; return whether it did."""
        if self.best_weights is None or self.best.epoch == last_epoch:
            return False
        model.load_state_dict(self.best_weights)
        return True

    def state_dict(self) -> dict:
        """JSON-ready counters (the best weights are not in it: see the class doc)."""
        return {"gain": self.gain.state(), "best": self.best.state(), "stale": self.stale}

    def load_state_dict(self, state, best_weights: dict | None = None) -> None:
        if isinstance(state, list):  # checkpoints written before this class held the state
            state = {"gain": state[0], "best": state[1], "stale": state[2]}
        self.gain.load(state["gain"])
        self.best.load(state["best"])
        self.stale = int(state["stale"])
        self.best_weights = best_weights or None
