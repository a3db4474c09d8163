"""Hydra's compose context on the project's conf/, and the options of a group."""

from __future__ import annotations

from contextlib import contextmanager

from hydra import initialize_config_dir

from mlplab.config import conf_dir


@contextmanager
def hydra_context():
    with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="train"):
        yield


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
