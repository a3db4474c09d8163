"""Learning-rate schedules, queried once per epoch: `optimizer.lr = s.lr_at(epoch, metric)`.

Epochs count from 0; `lr_at(epoch)` is the rate to use during that epoch. Closed-form
schedules ignore `metric`; `reduce_on_plateau` reads the monitored metric of the epoch just
finished (None when there is none yet, e.g. at epoch 0) and keeps state, saved with
`state_dict()` for resuming.
"""

from __future__ import annotations

import math

from mlplab.constraints import (
    MODE,
    NON_NEGATIVE,
    POSITIVE,
    Constrained,
    Interval,
    check_keywords,
    fail,
)
from mlplab.nn._registry import lookup
from mlplab.nn.optimizer_base import LEARNING_RATE

EPOCHS = Interval(int, 1)


class Schedule(Constrained):
    """Base class; `base_lr` is the optimizer's rate (config: `optimizer.lr`), and each
    schedule declares the rules of its own parameters in `constraints`."""

    name = "schedule"
    prefix = "schedule"
    constraints = {"base_lr": LEARNING_RATE}

    def __init__(self, base_lr: float):
        self.base_lr = self.checked("base_lr", base_lr)

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
    constraints = {**Schedule.constraints, "step_size": EPOCHS, "gamma": POSITIVE}

    def __init__(self, base_lr, step_size: int = 10, gamma: float = 0.1):
        super().__init__(base_lr)
        self.step_size = self.checked("step_size", step_size)
        self.gamma = self.checked("gamma", gamma)

    def lr_at(self, epoch, metric=None):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """base_lr * gamma ** epoch (PyTorch ExponentialLR)."""

    name = "exponential"
    constraints = {**Schedule.constraints, "gamma": POSITIVE}

    def __init__(self, base_lr, gamma: float = 0.95):
        super().__init__(base_lr)
        self.gamma = self.checked("gamma", gamma)

    def lr_at(self, epoch, metric=None):
        return self.base_lr * self.gamma ** epoch


class Cosine(Schedule):
    """Linear warmup then cosine decay to min_lr.

    epoch < warmup_epochs: base_lr * (epoch + 1) / warmup_epochs;
    afterwards, with T = epochs - warmup_epochs and e = epoch - warmup_epochs:
    min_lr + (base_lr - min_lr) * (1 + cos(pi * e / T)) / 2, held at min_lr past T.
    """

    name = "cosine"
    constraints = {**Schedule.constraints, "epochs": EPOCHS, "min_lr": NON_NEGATIVE,
                   "warmup_epochs": Interval(int, 0)}

    def __init__(self, base_lr, epochs: int = 100, min_lr: float = 0.0,
                 warmup_epochs: int = 0):
        super().__init__(base_lr)
        self.epochs = self.checked("epochs", epochs)
        self.min_lr = self.checked("min_lr", min_lr)
        self.warmup_epochs = self.checked("warmup_epochs", warmup_epochs)
        self.check_together(vars(self), self.engine_key)

    @classmethod
    def check_together(cls, values, key):
        if values["warmup_epochs"] >= values["epochs"]:
            fail(key("warmup_epochs"), values["warmup_epochs"],
                 f"smaller than {key('epochs')} ({values['epochs']})")
        if values["min_lr"] > values["base_lr"]:
            fail(key("min_lr"), values["min_lr"],
                 f"at most the base learning rate, {key('base_lr')} ({values['base_lr']})")

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
    constraints = {**Schedule.constraints, "factor": Interval(float, 0, 1, closed="neither"),
                   "patience": Interval(int, 0), "min_delta": NON_NEGATIVE, "mode": MODE,
                   "min_lr": NON_NEGATIVE}

    def __init__(self, base_lr, factor: float = 0.1, patience: int = 10,
                 min_delta: float = 0.0, mode: str = "min", min_lr: float = 0.0):
        super().__init__(base_lr)
        self.factor = self.checked("factor", factor)
        self.patience = self.checked("patience", patience)
        self.min_delta = self.checked("min_delta", min_delta)
        self.mode = self.checked("mode", mode)
        self.min_lr = self.checked("min_lr", min_lr)
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
    check_keywords(cls.__init__, kwargs, "schedule", name, skip=("base_lr",))
    return cls(base_lr, **kwargs)
