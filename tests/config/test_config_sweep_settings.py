"""What the sweep-setting and ambiguity checks of preflight let through: the refusals are
in the bad-input table (tests/reliability/test_bad_input.py); these lines must pass, so a
check that refused too much would fail here."""

from __future__ import annotations

import pytest

from mlplab.config.preflight import check_command_line
from mlplab.errors import ConfigError

ACCEPTED = [
    # a group's name key that agrees with its choice (arask's scheme is named normal)
    (["optimizer=adam", "optimizer.name=adam"], False),
    (["initializer=arask", "initializer.name=normal"], False),
    # a swept group is one choice per job, not a group chosen twice
    (["dataset=xor,moons", "dataset.split=ordered"], True),
    # joblib's negative worker counts (-1: one per core)
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-1", "seed=0,1"], True),
    # a count-down range and an interval under the Optuna sweeper
    (["seed=range(3,0,-1)"], True),
    (["sweep=moons_search", "optimizer.lr=tag(log, interval(0.001, 0.1))"], True),
    (["trainer.epochs=1000000000"], False),  # the most log_every=auto serves
    (["trainer.epochs=1000000001", "trainer.log_every=1000"], False),
]


@pytest.mark.parametrize("overrides,multirun", ACCEPTED, ids=[" ".join(a) for a, _ in ACCEPTED])
def test_these_command_lines_pass_preflight(overrides, multirun):
    assert check_command_line(overrides, multirun=multirun, values=True) >= 1


def test_one_epoch_past_what_auto_serves_is_refused():
    with pytest.raises(ConfigError, match=r"^trainer\.epochs: invalid value 1000000001; must "
                                          r"be at most 1000000000 with trainer\.log_every=auto"):
        check_command_line(["trainer.epochs=1000000001"], multirun=False)


def test_a_group_named_against_its_choice_is_refused_even_when_both_exist():
    with pytest.raises(ConfigError, match=r"^optimizer\.name: 'sgd' contradicts optimizer=adam"):
        check_command_line(["optimizer=adam", "optimizer.name=sgd"], multirun=False)
