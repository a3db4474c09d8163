"""Composing the config `mlplab train` runs, outside Hydra's own app."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from mlplab.config.paths import conf_dir


def compose_train(*overrides: str, hydra_node: bool = False):
    """The config `mlplab train OVERRIDES` would run, for notebooks, scripts and tests
    (`hydra_node=True` keeps Hydra's own node, with the group choices)."""
    with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="train"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_node)
