"""The job-side PruningCallback against a real SQLite study, as a sweep would set it up."""

from __future__ import annotations

import math

import pytest
from optuna.trial import TrialState

from mlplab.errors import ConfigError
from mlplab.search.factories import PRUNER_ATTR, make_pruner
from mlplab.search.pruning import PruningCallback
from mlplab.search.study import open_study

MEDIAN = {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 2, "interval_steps": 1,
          "min_resource": "auto", "max_resource": "auto", "reduction_factor": None}


class RecordingTrainer:
    def __init__(self):
        self.stops = []

    def request_stop(self, reason):
        self.stops.append(reason)


@pytest.fixture
def study_with_history(tmp_path):
    """Two finished trials with flat curves at 1.0 and 2.0: the median at every epoch is 1.5."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study, _ = open_study("s", url, "minimize", make_pruner(MEDIAN))
    study.set_user_attr(PRUNER_ATTR, MEDIAN)
    for level in (1.0, 2.0):
        trial = study.ask()
        for epoch in range(1, 6):
            trial.report(level, epoch)
        study.tell(trial, level)
    return study, url


def _callback(study, url, mode="min", monitor="test_loss"):
    trial = study.ask()
    trainer = RecordingTrainer()
    callback = PruningCallback({"number": trial.number, "study_name": "s", "storage": url},
                               monitor, mode)
    callback.on_train_start(trainer)
    return trial, trainer, callback


def test_a_lagging_run_is_stopped_at_the_first_epoch_after_warm_up(study_with_history):
    study, url = study_with_history
    trial, trainer, callback = _callback(study, url)
    for epoch in range(1, 6):
        callback.on_epoch_end(epoch, {"test_loss": 3.0, "train_loss": 0.1})
        if trainer.stops:
            break
    # 3.0 is worse than the median 1.5 at every epoch; epoch 1 is still warm-up (step < 2).
    assert trainer.stops == ["pruned"]
    frozen = study._storage.get_trial(trial._trial_id)
    assert frozen.user_attrs["pruned_at"] == 2 == callback.pruned_at
    assert frozen.intermediate_values == {1: 3.0, 2: 3.0}
    assert frozen.state == TrialState.RUNNING  # telling the study is the sweeper's job


def test_a_leading_run_is_left_alone_and_nan_is_not_reported(study_with_history):
    study, url = study_with_history
    trial, trainer, callback = _callback(study, url)
    for epoch in range(1, 6):
        callback.on_epoch_end(epoch, {"test_loss": 0.5 if epoch != 3 else math.nan})
    assert trainer.stops == []
    frozen = study._storage.get_trial(trial._trial_id)
    assert sorted(frozen.intermediate_values) == [1, 2, 4, 5]
    assert "pruned_at" not in frozen.user_attrs


def test_a_killed_run_marks_its_trial_for_the_sweeper(study_with_history):
    study, url = study_with_history
    trial, _, callback = _callback(study, url)
    callback.on_train_end("KILLED", "SIGTERM")
    assert study._storage.get_trial(trial._trial_id).user_attrs["killed"] == "SIGTERM"


def test_mode_disagreeing_with_the_study_direction_is_a_config_error(study_with_history):
    study, url = study_with_history
    with pytest.raises(ConfigError, match="hydra.sweeper.direction=maximize"):
        _callback(study, url, mode="max", monitor="test_accuracy")


def test_a_monitor_the_run_does_not_compute_is_a_config_error(study_with_history):
    study, url = study_with_history
    _, _, callback = _callback(study, url, monitor="val_loss")
    with pytest.raises(ConfigError, match="'val_loss'.*valid choices: test_loss, train_loss"):
        callback.on_epoch_end(1, {"test_loss": 1.0, "train_loss": 1.0})


def test_unknown_study_or_trial_is_a_config_error(study_with_history):
    _, url = study_with_history
    with pytest.raises(ConfigError, match="trial.study_name"):
        PruningCallback({"number": 0, "study_name": "nope", "storage": url},
                        "test_loss").on_train_start(RecordingTrainer())
    with pytest.raises(ConfigError, match="trial.number"):
        PruningCallback({"number": 99, "study_name": "s", "storage": url},
                        "test_loss").on_train_start(RecordingTrainer())
