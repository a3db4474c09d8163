"""The launchers' per-job compose, once per distinct set of group choices, against Hydra's
own `load_sweep_config`: the same config for every kind of override a sweep's job carries."""

from __future__ import annotations

import copy

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from mlplab.config.compose import hydra_on_conf
from mlplab.config.sweep_jobs import ComposeOnceConfigLoader, compose_sweep_jobs_once
from mlplab.private_api import hydra_config_loader_class

# The command line of the sweep (its master config) and the overrides of its jobs.
SWEEP = ["experiment=quick_moons", "hydra/launcher=local_parallel",
         "hydra.sweep.dir=/tmp/mlplab-sweep-jobs-test"]
JOBS = [
    ["optimizer.lr=0.1", "seed=3"],
    ["seed=4", "optimizer.lr=0.01"],                       # same shape, other order
    ["optimizer=sgd", "optimizer.lr=0.2", "seed=0"],        # another group choice
    ["optimizer=sgd", "optimizer.momentum=0.5", "seed=1"],  # ... composed once with sgd
    ["architecture.hidden=[8,4]", "+tags.study=width", "trainer.epochs=3"],
    ["dataset=circles", "dataset.noise=0.05", "~tags"],
    ["hydra.job.chdir=true", "seed=2"],                     # a hydra override in a job
]


def hydra_and_ours(sweep, jobs):
    """[(Hydra's config, ours)] for each job, from one master config."""
    loader = GlobalHydra.instance().config_loader()
    master = loader.load_configuration("train", overrides=list(sweep), run_mode=RunMode.MULTIRUN)
    ours = copy.copy(loader)
    compose_sweep_jobs_once(ours)
    assert isinstance(ours, ComposeOnceConfigLoader)
    original = hydra_config_loader_class().load_sweep_config
    # A sweeper gives each job the command line's task overrides, then the job's own.
    jobs = [[o for o in sweep if not o.startswith("hydra")] + job for job in jobs]
    return [(original(loader, master, job), ours.load_sweep_config(master, job)) for job in jobs]


def as_data(cfg):
    return OmegaConf.to_container(cfg, resolve=False), OmegaConf.is_struct(cfg)


def test_every_job_gets_hydras_own_config():
    with hydra_on_conf():
        pairs = hydra_and_ours(SWEEP, JOBS + JOBS)  # the second round from the cache
    for job, (hydras, ours) in zip(JOBS + JOBS, pairs, strict=True):
        assert as_data(ours) == as_data(hydras), job
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras), job
        for cfg in (hydras, ours):  # as the launcher sets them before the job runs
            cfg.hydra.job.num, cfg.hydra.runtime.output_dir = 0, "/tmp/out"
        job_part = {k: v for k, v in OmegaConf.to_container(ours, resolve=True).items()
                    if k != "hydra"}
        assert job_part == {k: v for k, v in OmegaConf.to_container(
            hydras, resolve=True).items() if k != "hydra"}, job
    dirname = pairs[0][1].hydra.job.override_dirname
    assert dirname == "experiment=quick_moons,optimizer.lr=0.1,seed=3"
    assert pairs[1][1].optimizer.lr == 0.01 and pairs[0][1].optimizer.lr == 0.1


def test_a_jobs_config_is_its_own_copy():
    with hydra_on_conf():
        (_, first), (_, second) = hydra_and_ours(SWEEP, [["seed=1"], ["seed=2"]])
        first.optimizer.lr = 123.0
        (_, third), = hydra_and_ours(SWEEP, [["seed=3"]])
    assert second.optimizer.lr == third.optimizer.lr == 0.03


def test_a_bad_value_fails_as_in_hydra():
    with hydra_on_conf(), pytest.raises(Exception) as ours:
        hydra_and_ours(SWEEP, [["trainer.epochs=abc"]])
    with hydra_on_conf():
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("train", overrides=SWEEP, run_mode=RunMode.MULTIRUN)
        with pytest.raises(Exception) as hydras:
            loader.load_sweep_config(master, ["trainer.epochs=abc"])
    assert type(ours.value) is type(hydras.value)
    assert "trainer.epochs" in str(ours.value)


def test_reused_configs_match_hydras_job_after_job():
    """`reused_sweep_config` (the local_parallel launcher's) hands the same object to the
    jobs of one shape that change the same keys, and each time it equals Hydra's config
    of that job: nothing of the job before it is left, not even what that job's run set
    in the `hydra` node."""
    jobs = [["optimizer.lr=0.1", "seed=3"], ["optimizer.lr=0.01", "seed=4"],
            ["seed=5"],                                    # other keys: a fresh copy
            ["optimizer=sgd", "optimizer.lr=0.2", "seed=0"],
            ["optimizer.lr=0.02", "seed=6"], ["optimizer.lr=0.03", "seed=7"]]
    with hydra_on_conf():
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("train", overrides=list(SWEEP),
                                           run_mode=RunMode.MULTIRUN)
        ours = copy.copy(loader)
        compose_sweep_jobs_once(ours)
        original = hydra_config_loader_class().load_sweep_config
        given = []
        for job in jobs:
            job = ["experiment=quick_moons", *job]
            cfg = ours.reused_sweep_config(master, job)
            assert as_data(cfg) == as_data(original(loader, master, job)), job
            given.append(cfg)
            # what the launcher's run_job does to the config of the job it runs
            OmegaConf.set_readonly(cfg.hydra, True)
    assert given[1] is given[0] and given[1].optimizer.lr == 0.01
    assert given[2] is not given[1] and given[3] is not given[2]
    assert given[4] is not given[1]  # the seed-only job came between: a fresh copy again
    assert given[5] is given[4]
