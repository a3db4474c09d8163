"""Learning-rate schedules, queried once per epoch: `optimizer.lr = s.lr_at(epoch, metric)`.

Epochs count from 0; `lr_at(epoch)` is the rate to use during that epoch. Closed-form
schedules ignore `metric`; `reduce_on_plateau` reads the monitored metric of the epoch just
finished (None when there is none yet, e.g. at epoch 0) and keeps state, saved with
`state_dict()` for resuming.
"""

from __future__ import annotations

import math

from mlplab.errors import ConfigError
from mlplab.nn._registry import check_kwargs, lookup, positive_number, require


def _epoch_count(key: str, value, minimum: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    require(ok, key, value, f"an integer >= {minimum}")
    return int(value)


class Schedule:
    name = "schedule"

    def __init__(self, base_lr: float):
        self.base_lr = positive_number("optimizer.lr", base_lr)

    def lr_at(self, epoch: int, metric: float | None = None) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Constant(Schedule):
    name = "constant"

    def lr_at(self, epoch, metric=None):
        return self.base_lr


class Step(Schedule):
    """base_lr * gamma ** (epoch // step_size) (PyTorch StepLR)."""

    name = "step"

    def __init__(self, base_lr, step_size: int = 10, gamma: float = 0.1):
        super().__init__(base_lr)
        self.step_size = _epoch_count("schedule.step_size", step_size, 1)
        self.gamma = positive_number("schedule.gamma", gamma)

    def lr_at(self, epoch, metric=None):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """base_lr * gamma ** epoch (PyTorch ExponentialLR)."""

    name = "exponential"

    def __init__(self, base_lr, gamma: float = 0.95):
        super().__init__(base_lr)
        self.gamma = positive_number("schedule.gamma", gamma)

    def lr_at(self, epoch, metric=None):
        return self.base_lr * self.gamma ** epoch


class Cosine(Schedule):
    """Linear warmup then cosine decay to min_lr.

    epoch < warmup_epochs: base_lr * (epoch + 1) / warmup_epochs;
    afterwards, with T = epochs - warmup_epochs and e = epoch - warmup_epochs:
    min_lr + (base_lr - min_lr) * (1 + cos(pi * e / T)) / 2, held at min_lr past T.
    """

    name = "cosine"

    def __init__(self, base_lr, epochs: int = 100, min_lr: float = 0.0,
                 warmup_epochs: int = 0):
        super().__init__(base_lr)
        self.epochs = _epoch_count("schedule.epochs", epochs, 1)
        self.min_lr = positive_number("schedule.min_lr", min_lr, allow_zero=True)
        self.warmup_epochs = _epoch_count("schedule.warmup_epochs", warmup_epochs, 0)
        require(self.warmup_epochs < self.epochs, "schedule.warmup_epochs", warmup_epochs,
                f"smaller than schedule.epochs ({self.epochs})")
        require(self.min_lr <= self.base_lr, "schedule.min_lr", min_lr,
                f"at most the base learning rate ({self.base_lr})")

    def lr_at(self, epoch, metric=None):
        if epoch < self.warmup_epochs:
            return self.base_lr * (epoch + 1) / self.warmup_epochs
        span = self.epochs - self.warmup_epochs
        progress = min(epoch - self.warmup_epochs, span) / span
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


class ReduceOnPlateau(Schedule):
    """Multiply the rate by `factor` once the metric has failed to improve by more than
    `min_delta` (absolute) for more than `patience` consecutive epochs, never going below
    min_lr; the count then restarts (PyTorch ReduceLROnPlateau with threshold_mode="abs",
    no cooldown)."""

    name = "reduce_on_plateau"

    def __init__(self, base_lr, factor: float = 0.1, patience: int = 10,
                 min_delta: float = 0.0, mode: str = "min", min_lr: float = 0.0):
        super().__init__(base_lr)
        self.factor = positive_number("schedule.factor", factor)
        require(self.factor < 1.0, "schedule.factor", factor, "in (0, 1)")
        self.patience = _epoch_count("schedule.patience", patience, 0)
        self.min_delta = positive_number("schedule.min_delta", min_delta, allow_zero=True)
        if mode not in ("min", "max"):
            raise ConfigError(f"schedule.mode: unknown mode {mode!r}; valid choices: max, min")
        self.mode = mode
        self.min_lr = positive_number("schedule.min_lr", min_lr, allow_zero=True)
        self.lr = self.base_lr
        self.best: float | None = None
        self.bad_epochs = 0
        self.last_epoch: int | None = None

    def _improved(self, metric: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def lr_at(self, epoch, metric=None):
        if metric is None or epoch == self.last_epoch:
            return self.lr
        self.last_epoch = epoch
        if self._improved(metric):
            self.best, self.bad_epochs = float(metric), 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.lr = max(self.lr * self.factor, self.min_lr)
                self.bad_epochs = 0
        return self.lr

    def state_dict(self):
        return {"lr": self.lr, "best": math.nan if self.best is None else self.best,
                "bad_epochs": self.bad_epochs,
                "last_epoch": -1 if self.last_epoch is None else self.last_epoch}

    def load_state_dict(self, state):
        self.lr = float(state["lr"])
        best = float(state["best"])
        self.best = None if math.isnan(best) else best
        self.bad_epochs = int(state["bad_epochs"])
        last = int(state["last_epoch"])
        self.last_epoch = None if last < 0 else last


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant,
    "step": Step,
    "exponential": Exponential,
    "cosine": Cosine,
    "reduce_on_plateau": ReduceOnPlateau,
}


def get_schedule(name: str, base_lr: float, **kwargs) -> Schedule:
    """Build a schedule, e.g. `get_schedule("cosine", 0.1, epochs=50, warmup_epochs=5)`."""
    cls = lookup(SCHEDULES, name, "schedule")
    check_kwargs(cls.__init__, kwargs, "schedule", name, skip=("base_lr",))
    return cls(base_lr, **kwargs)
