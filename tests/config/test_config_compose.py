"""The config tree composes as documented: defaults, every group option, presets, paths."""

from __future__ import annotations

import os

import pytest
from config_helpers import group_options
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from mlplab.config import compose_train, conf_dir, project_root, validate

GROUPS = ["dataset", "architecture", "initializer", "optimizer", "schedule", "trainer", "logger"]


def test_defaults_are_the_documented_choices():
    cfg = compose_train(hydra_node=True)
    choices = {group: cfg.hydra.runtime.choices[group] for group in GROUPS}
    assert choices == {"dataset": "moons", "architecture": "mlp", "initializer": "he_normal",
                       "optimizer": "sgd", "schedule": "constant", "trainer": "default",
                       "logger": "mlflow"}
    assert cfg.experiment_name == "default"
    assert cfg.run_name is None and cfg.trainer.batch_size is None
    assert OmegaConf.to_container(cfg.trial) == {"number": None, "study_name": None,
                                                 "storage": None}
    assert cfg.hydra.job.chdir is False
    assert cfg.hydra.run.dir.startswith(str(project_root() / "outputs" / "runs"))
    assert cfg.hydra.sweep.dir.startswith(str(project_root() / "outputs" / "multirun"))
    assert (cfg.hydra.callbacks.mlflow_sweep._target_
            == "mlplab.multirun.callbacks.MlflowSweepCallback")
    validate(cfg)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_group_option_composes_against_its_schema(group, option):
    cfg = compose_train(f"{group}={option}")
    validate(cfg)
    schema = OmegaConf.get_type(cfg[group])
    assert schema is not dict, f"{group}/{option}.yaml is not backed by a structured schema"


def test_schema_rejects_unknown_keys_and_wrong_types_at_compose_time():
    with pytest.raises(ConfigCompositionException) as unknown:
        compose_train("optimizer.lrr=0.1")
    assert unknown.value.__cause__.full_key == "optimizer.lrr"
    with pytest.raises(ConfigCompositionException) as wrong_type:
        compose_train("trainer.epochs=ten")
    assert wrong_type.value.__cause__.full_key == "trainer.epochs"
    with pytest.raises(ConfigCompositionException) as dataset_key:
        compose_train("dataset=circles", "dataset.n_samples=many")
    assert dataset_key.value.__cause__.full_key == "dataset.n_samples"
    with pytest.raises(MissingConfigException) as choice:
        compose_train("optimizer=adamm")
    assert "adam" in choice.value.options and "sgd" in choice.value.options


def test_quick_moons_preset_overrides_groups_and_keys_and_yields_to_the_command_line():
    cfg = compose_train("experiment=quick_moons", hydra_node=True)
    assert cfg.hydra.runtime.choices.optimizer == "adam"
    assert cfg.optimizer.name == "adam" and cfg.optimizer.lr == 0.03
    assert cfg.trainer.epochs == 200
    assert cfg.experiment_name == "quick_moons"
    assert compose_train("experiment=quick_moons", "optimizer.lr=0.5").optimizer.lr == 0.5


@pytest.mark.parametrize("preset", group_options("experiment"))
def test_every_preset_composes_validates_and_has_its_own_experiment(preset):
    cfg = compose_train(f"experiment={preset}", hydra_node=True)
    validate(cfg)
    assert cfg.experiment_name not in ("", "default")


def test_experiment_group_is_a_relative_link_to_the_top_level_presets():
    link = conf_dir() / "experiment"
    assert link.is_symlink() and os.readlink(link) == "../experiments"
    assert link.resolve() == (project_root() / "experiments").resolve()


def test_preset_resolver_reads_the_experiment_choice():
    with_preset = OmegaConf.create({"hydra": {"runtime": {"choices": {"experiment": "abc"}}},
                                    "name": "${mlplab.preset:}"})
    assert with_preset.name == "abc"
    without = OmegaConf.create({"hydra": {"runtime": {"choices": {"experiment": None}}},
                                "name": "${mlplab.preset:}"})
    assert without.name == "default"


def test_data_dir_is_under_the_project_unless_the_environment_says_otherwise(
        monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    monkeypatch.delenv("MLPLAB_DATA_DIR", raising=False)
    cfg = compose_train()
    assert cfg.data_dir == str(project_root() / "data")
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(tmp_path / "elsewhere"))
    assert cfg.data_dir == str(tmp_path / "elsewhere")


@pytest.mark.parametrize("launcher,target", [
    ("basic", "BasicLauncher"), ("joblib", "JoblibLauncher"),
    ("local_parallel", "LocalParallelLauncher"),
    ("submitit_local", "LocalLauncher"), ("submitit_slurm", "SlurmLauncher")])
def test_launcher_choices(launcher, target):
    cfg = compose_train(f"hydra/launcher={launcher}", hydra_node=True)
    assert cfg.hydra.launcher._target_.endswith(target)


def test_local_parallel_runs_one_job_per_core():
    cfg = compose_train("hydra/launcher=local_parallel", hydra_node=True)
    assert cfg.hydra.launcher.n_jobs == len(os.sched_getaffinity(0))


def test_slurm_launcher_exposes_partition_time_and_cpus():
    cfg = compose_train("hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu",
                        "hydra.launcher.timeout_min=30", "hydra.launcher.cpus_per_task=4",
                        hydra_node=True)
    launcher = cfg.hydra.launcher
    assert (launcher.partition, launcher.timeout_min, launcher.cpus_per_task) == ("cpu", 30, 4)


def test_override_lines_are_parsed_once_and_as_hydra_parses_them():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from mlplab.config.compose import parsed_lines

    parser = OverridesParser.create()
    lines = ["optimizer.lr=0.1", "seed=3", "+tags.owner=me", "~trainer.resume",
             "dataset=moons", "optimizer.lr=0.1"]
    parsed = parsed_lines(parser, lines)
    assert parsed == parser.parse_overrides(lines)  # Hydra's own parse, line for line
    assert parsed[0] is parsed[-1]  # the repeated line was parsed once
    assert parsed_lines(OverridesParser.create(), ["seed=3"])[0] is parsed[1]
    with pytest.raises(OverrideParseException) as error:
        parsed_lines(parser, ["seed=3", "optimizer.lr=(0.1"])
    assert error.value.override == "optimizer.lr=(0.1"
