"""Every job of a command line is expanded, composed and checked before any runs."""

from __future__ import annotations

import sys

import pytest
from config_helpers import hydra_context
from hydra import compose
from omegaconf import OmegaConf

from mlplab.config import preflight
from mlplab.config.compose import JobComposer
from mlplab.config.preflight import check_command_line, expand_jobs
from mlplab.errors import ConfigError


def test_grid_is_the_cartesian_product_in_the_basic_sweepers_order():
    with hydra_context():
        jobs = expand_jobs(["a=1,2", "b=x,y,z", "c=5"], None)
    assert jobs == [["a=1", "b=x", "c=5"], ["a=1", "b=y", "c=5"], ["a=1", "b=z", "c=5"],
                    ["a=2", "b=x", "c=5"], ["a=2", "b=y", "c=5"], ["a=2", "b=z", "c=5"]]


def test_sweeper_params_join_the_grid_and_the_command_line_wins_on_a_key():
    with hydra_context():
        jobs = expand_jobs(["b=7", "c=range(0,2)"], {"a": "1,2", "b": "3,4"})
    assert jobs == [["a=1", "b=7", "c=0"], ["a=1", "b=7", "c=1"],
                    ["a=2", "b=7", "c=0"], ["a=2", "b=7", "c=1"]]


def test_continuous_ranges_are_checked_at_both_ends():
    with hydra_context():
        jobs = expand_jobs(["lr=tag(log,interval(0.001,0.1))"], None)
    assert jobs == [["lr=0.001"], ["lr=0.1"]]


def test_huge_grids_check_each_value_once(monkeypatch):
    monkeypatch.setattr(preflight, "MAX_COMBINATIONS", 10)
    with hydra_context():
        jobs = expand_jobs(["a=1,2,3,4", "b=1,2,3,4", "c=1,2"], None)
    # 32 combinations > 10: the first values, then each other value once.
    assert len(jobs) == 1 + 3 + 3 + 1
    assert {job[0] for job in jobs} == {"a=1", "a=2", "a=3", "a=4"}


JOBS = [["optimizer=adam", "optimizer.lr=0.2", "seed=3"],
        ["optimizer=adam", "optimizer.lr=0.3", "+tags.owner=me"],
        ["dataset=blobs", "dataset.centers=4", "trainer.epochs=7", "trainer.resume=abc"],
        ["experiment=quick_moons", "schedule=cosine", "trainer.epochs=12"]]


def test_composing_once_per_group_choice_gives_what_hydra_composes():
    with hydra_context():
        composer = JobComposer("train")
        fast = {tuple(job): composer.job(job) for job in JOBS}
        for job in JOBS:
            full = compose("train", overrides=job)
            assert OmegaConf.to_container(fast[tuple(job)]) == OmegaConf.to_container(full)
            assert OmegaConf.to_container(fast[tuple(job)], resolve=True) == \
                OmegaConf.to_container(full, resolve=True)


def test_a_sweep_needs_multirun():
    with pytest.raises(ConfigError, match=r"^optimizer\.lr: .*-m \(--multirun\)"):
        check_command_line(["optimizer.lr=0.1,0.2"], multirun=False)


def test_one_bad_job_in_a_sweep_is_named():
    assert check_command_line(["optimizer.lr=0.1,0.2", "seed=0,1"], multirun=True) == 4
    with pytest.raises(ConfigError) as error:
        check_command_line(["optimizer.lr=0.1,-0.2", "seed=0,1"], multirun=True)
    assert str(error.value).startswith("optimizer.lr: invalid value -0.2")
    assert "(job: optimizer.lr=-0.2 seed=0)" in str(error.value)


def test_sweeps_are_checked_against_their_data():
    # 50 moons with 10% held out leave 45 training samples: batch 100 only fits the first.
    overrides = ["dataset.n_samples=1000,50", "trainer.batch_size=100"]
    assert check_command_line(overrides, multirun=True, load_data=False) == 2
    with pytest.raises(ConfigError, match=r"^trainer\.batch_size: .*\(45\).*n_samples=50"):
        check_command_line(overrides, multirun=True, load_data=True)


def test_missing_ray_launcher_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as where the `ray` extra is not installed
    with pytest.raises(ConfigError, match=r"^hydra/launcher: 'ray' .*pip install.*\[ray\]"):
        check_command_line(["hydra/launcher=ray"], multirun=True)
