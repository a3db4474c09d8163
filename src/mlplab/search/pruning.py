"""Job-side half of pruning: report each evaluation to the study, stop when told to.

The sweeper asks a trial, then passes `trial.number`, `trial.study_name` and
`trial.storage` to the job. The app adds `PruningCallback(cfg.trial, monitor, mode)` to
the trainer; at every evaluation it reports the monitored metric as the intermediate
value at step = epoch and asks the study's pruner (rebuilt from the settings the sweeper
saved on the study) whether to stop. A pruned job records `pruned_at` on the trial, which
is how the sweeper knows to tell the study PRUNED rather than COMPLETE.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from mlplab.errors import ConfigError
from mlplab.training.callbacks import Callback

log = logging.getLogger(__name__)

PRUNED_AT_ATTR = "pruned_at"
KILLED_ATTR = "killed"
STOP_REASON = "pruned"


class PruningCallback(Callback):
    """Trainer callback reporting `monitor` to an Optuna trial and stopping pruned runs.

    `trial_cfg` has `number`, `study_name`, `storage`; `mode` ("min"/"max") must agree with
    the study's direction, otherwise the pruner would keep the worst runs.
    """

    def __init__(self, trial_cfg: Any, monitor: str, mode: str = "min") -> None:
        self.number = int(trial_cfg["number"])
        self.study_name = str(trial_cfg["study_name"])
        self.storage_url = str(trial_cfg["storage"])
        self.monitor = monitor
        self.mode = mode
        self.trainer: Any = None
        self.trial: Any = None
        self.pruned_at: int | None = None

    # -- trainer events ------------------------------------------------------------------
    def on_train_start(self, trainer: Any) -> None:
        self.trainer = trainer
        self.trial = self._load_trial()

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.trial is None or self.pruned_at is not None:
            return
        if self.monitor not in metrics:
            raise ConfigError(
                f"trainer.monitor: {self.monitor!r} is not computed by this run; "
                f"valid choices: {', '.join(sorted(metrics))}"
            )
        value = float(metrics[self.monitor])
        if not math.isfinite(value):
            return  # divergence is the trainer's business: the run ends FAILED
        self.trial.report(value, int(epoch))
        if self.trial.should_prune():
            self.pruned_at = int(epoch)
            self.trial.set_user_attr(PRUNED_AT_ATTR, self.pruned_at)
            log.info("Trial %d pruned at epoch %d (%s=%g)", self.number, epoch, self.monitor,
                     value)
            if self.trainer is not None:
                self.trainer.request_stop(STOP_REASON)

    def on_train_end(self, status: str, reason: str | None) -> None:
        # A signal stops the trainer gracefully and the job returns normally, so this mark
        # is how the sweeper learns that the sweep is being interrupted.
        if status == "KILLED" and self.trial is not None:
            self.trial.set_user_attr(KILLED_ATTR, reason or "signal")

    # -- helpers ---------------------------------------------------------------------------
    def _load_trial(self) -> Any:
        import optuna

        from mlplab.search.factories import PRUNER_ATTR, make_pruner
        from mlplab.search.study import open_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(self.storage_url)
        try:
            study_id = storage.get_study_id_from_name(self.study_name)
        except KeyError:
            raise ConfigError(
                f"trial.study_name: no study {self.study_name!r} in {self.storage_url}"
            ) from None
        settings = storage.get_study_user_attrs(study_id).get(PRUNER_ATTR, {"name": "none"})
        study = optuna.load_study(
            study_name=self.study_name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),
            pruner=make_pruner(settings),
        )
        direction = study.direction.name.lower()
        if (self.mode == "max") != (direction == "maximize"):
            raise ConfigError(
                f"hydra.sweeper.direction: the study {direction}s but the monitored metric "
                f"{self.monitor!r} is mode={self.mode}; set hydra.sweeper.direction="
                f"{'maximize' if self.mode == 'max' else 'minimize'}"
            )
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        except KeyError:
            raise ConfigError(
                f"trial.number: study {self.study_name!r} has no trial {self.number}"
            ) from None
        return optuna.trial.Trial(study, trial_id)
