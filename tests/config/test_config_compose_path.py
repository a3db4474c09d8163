"""The one compose path (`mlplab.config.compose`) and the one load-data mapping
(`mlplab.config.job_data`) that preflight, the job and `mlplab reproduce` share."""

from __future__ import annotations

import pytest
from config_helpers import hydra_context
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mlplab.config import compose_train, preflight
from mlplab.config.compose import JobComposer, apply_value_overrides, compose_job
from mlplab.config.job_data import dataset_arguments, load_job_data, same_shapes_key
from mlplab.config.preflight import check_command_line, check_jobs
from mlplab.errors import ConfigError
from mlplab.job.build import load_data


def test_compose_job_is_compose_train_with_one_line_errors():
    assert (OmegaConf.to_container(compose_job("optimizer=adam", "seed=4"))
            == OmegaConf.to_container(compose_train("optimizer=adam", "seed=4")))
    with pytest.raises(ConfigError, match=r"^optimizer\.lrr: unknown key; valid keys: .*lr"):
        compose_job("optimizer.lrr=0.1")
    with pytest.raises(ConfigError, match=r"^optimizer: unknown choice 'adamm'"):
        compose_job("optimizer=adamm")


def test_value_overrides_as_strings_or_parsed_with_one_line_errors():
    cfg = compose_train()
    apply_value_overrides(cfg, ["optimizer.lr=0.25", "+tags.owner=me"])
    apply_value_overrides(cfg, OverridesParser.create().parse_overrides(["seed=9"]))
    assert (cfg.optimizer.lr, cfg.tags.owner, cfg.seed) == (0.25, "me", 9)
    with pytest.raises(ConfigError, match=r"^trainer\.epochs: invalid value 'ten'; must be an "
                                          r"integer$"):
        apply_value_overrides(cfg, ["trainer.epochs=ten"])
    with pytest.raises(ConfigError, match=r"^bad override 'seed=\[1'"):
        apply_value_overrides(cfg, ["seed=[1"])


def test_the_composer_composes_once_per_set_of_group_choices(monkeypatch):
    calls = []
    original = ConfigLoaderImpl.load_configuration

    def counting(self, config_name, overrides, *args, **kwargs):
        calls.append(list(overrides))
        return original(self, config_name, overrides, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    with hydra_context():
        composer = JobComposer()
        jobs = [["optimizer=adam", f"optimizer.lr={lr}", f"seed={seed}"]
                for lr in (0.1, 0.2) for seed in (0, 1)] + [["optimizer=sgd", "seed=2"]]
        configs = [composer.job(job) for job in jobs]
        whole = composer.with_hydra_node(["optimizer=adam", "optimizer.lr=0.3"])
    assert calls == [["optimizer=adam"], ["optimizer=sgd"]]
    assert [(c.optimizer.name, c.optimizer.lr, c.seed) for c in configs[:2]] == [
        ("adam", 0.1, 0), ("adam", 0.1, 1)]
    assert "hydra" not in configs[0] and configs[-1].optimizer.name == "sgd"
    assert whole.hydra.runtime.choices.optimizer == "adam" and whole.optimizer.lr == 0.3
    assert configs[0].optimizer.lr == 0.1  # each job has its own copy


def test_one_mapping_of_dataset_keys_for_the_job_and_preflight():
    cfg = compose_train("dataset=blobs", "dataset.n_samples=60", "seed=5",
                        "trainer.dtype=float32", "data_dir=/somewhere")
    name, arguments = dataset_arguments(cfg)
    assert name == "blobs"
    assert arguments["n_samples"] == 60 and arguments["seed"] == 5
    assert arguments["dtype"] == "float32" and arguments["data_dir"] == "/somewhere"
    ours, jobs = load_job_data(cfg), load_data(cfg)
    assert (ours.n_train, ours.n_features, str(ours.X_train.dtype)) == (
        jobs.n_train, jobs.n_features, "float32")


def test_seeds_and_dtypes_share_a_loaded_dataset_and_sizes_do_not(monkeypatch):
    assert same_shapes_key(compose_train("seed=1")) == same_shapes_key(
        compose_train("seed=2", "trainer.dtype=float32"))
    assert same_shapes_key(compose_train()) != same_shapes_key(
        compose_train("dataset.n_samples=300"))
    loads = []

    def counting(cfg):
        loads.append(cfg.dataset.n_samples)
        return load_job_data(cfg)

    monkeypatch.setattr(preflight, "load_job_data", counting)
    assert check_command_line(["seed=0,1", "trainer.dtype=float32,float64",
                               "dataset.n_samples=200,300"], multirun=True, load_data=True) == 8
    assert sorted(loads) == [200, 300]


OPTUNA = ["hydra/sweeper=mlplab_optuna", "optimizer.lr=interval(0.01,0.1)",
          "optimizer=sgd,adam"]


def test_preflight_composes_the_optuna_sweepers_own_overrides_too():
    result = check_jobs([*OPTUNA, "hydra.sweeper.seeds=[0,1]"], multirun=True)
    assert result.jobs == 2 * 2 * 2  # both ends, both choices, each seed
    assert result.every_job  # so the sweeper need not compose its first batch again
    with pytest.raises(ConfigError, match=r"^sed: unknown key"):
        check_jobs([*OPTUNA, "hydra.sweeper.seeds=[0,1]", "hydra.sweeper.seed_key=sed"],
                   multirun=True)
    with pytest.raises(ConfigError, match=r"^seed: invalid value -1"):
        check_jobs([*OPTUNA, "hydra.sweeper.seeds=[0,-1]"], multirun=True)


def test_only_a_whole_search_space_covers_every_job(monkeypatch):
    assert not check_jobs(["optimizer.lr=0.1,0.2"], multirun=True).every_job  # a grid
    monkeypatch.setattr(preflight, "MAX_COMBINATIONS", 3)
    assert not check_jobs(OPTUNA, multirun=True).every_job  # 4 combinations, some unchecked
