"""The `${mlplab.*:}` resolvers the YAML files use, registered on import of `mlplab.config`."""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from mlplab.config.paths import project_root

# `${mlplab.root:}` lets YAML files place things under the checkout whatever the working
# directory (data_dir, Hydra's run directories).
if not OmegaConf.has_resolver("mlplab.root"):
    OmegaConf.register_new_resolver("mlplab.root", lambda: str(project_root()))


def preset_name(*, _root_=None) -> str:
    """The experiment preset this config was composed with (`experiment=NAME`), or
    "default": read from the config's own hydra node where it has one (the sweep's launching
    process), else from the running Hydra job."""
    choice = None
    if _root_ is not None and "hydra" in _root_:
        choice = OmegaConf.select(_root_, "hydra.runtime.choices.experiment", default=None)
    elif HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("experiment")
    return str(choice) if choice else "default"


# `${mlplab.preset:}`: the default experiment_name, so a preset's runs (and its sweeps'
# parent runs) land in an MLflow experiment named after it.
if not OmegaConf.has_resolver("mlplab.preset"):
    OmegaConf.register_new_resolver("mlplab.preset", preset_name)
# `${mlplab.cpus:}`: the cores this process may use (the local_parallel launcher's n_jobs).
if not OmegaConf.has_resolver("mlplab.cpus"):
    OmegaConf.register_new_resolver("mlplab.cpus", lambda: len(os.sched_getaffinity(0)))
