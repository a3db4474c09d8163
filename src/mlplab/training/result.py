"""What `Trainer.fit` returns."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class TrainResult:
    """The outcome of one fit.

    status: FINISHED, FAILED (a metric became NaN/inf; `reason` names it and the epoch) or
    KILLED (SIGINT/SIGTERM; a checkpoint of the last completed epoch was emitted).
    reason: why training ended early, whatever the status (None when it ran to the end).
    stop_reason: the reason given to `request_stop` (early stopping, pruning), else None.
    epochs_run: the last completed epoch (1-based, counting epochs before a resume).
    metrics: the last evaluation; history: {key: [(epoch, value), ...]} of every one.
    monitor/best_epoch/best_value/best_metrics: the best evaluation of the monitored metric.
    """

    status: str
    reason: str | None
    epochs_run: int
    best_epoch: int | None
    metrics: dict[str, float]
    history: dict[str, list[tuple[int, float]]]
    stop_reason: str | None = None
    monitor: str | None = None
    mode: str = "min"
    best_value: float | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    restored_best_weights: bool = False
    checkpoint: str | None = None
    seconds: float = 0.0

    @property
    def objective(self) -> float | None:
        """The monitored metric of the weights the model ends with: the best evaluation's
        when the best weights were restored, else the last evaluation's."""
        if self.restored_best_weights:
            return self.best_value
        return self.metrics.get(self.monitor) if self.monitor else None
