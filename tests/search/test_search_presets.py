"""The sweep presets in conf/sweep/: they select this sweeper, and every job they can
launch composes and validates (a typo in a searched key or choice fails here, not
halfway through a sweep)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mlplab.config import compose_train, conf_dir
from mlplab.config.preflight import check_command_line
from mlplab.search.config import OptunaSweeperConf
from mlplab.search.space import parse_search_space

PRESETS = sorted(p.stem for p in (conf_dir() / "sweep").glob("*.yaml"))


def test_the_tutorial_and_toy_presets_exist():
    assert {"arask_mnist_search", "moons_search"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_selects_the_optuna_sweeper_and_all_its_jobs_compose(preset):
    cfg = compose_train(f"sweep={preset}", hydra_node=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == OptunaSweeperConf._target_
    params = OmegaConf.to_container(sweeper.params)
    space = parse_search_space([f"{k}={v}" for k, v in params.items()])
    assert set(space.params) == set(params)
    # Composes every choice and both ends of every interval, and validates each config.
    assert check_command_line([f"sweep={preset}"], multirun=True) >= 2
    if sweeper.direction is not None:  # else it follows trainer.mode
        # A direction against the monitored metric's mode would fail every pruned job.
        assert (sweeper.direction == "maximize") == (cfg.trainer.mode == "max")
