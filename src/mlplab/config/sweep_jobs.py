"""A sweep's jobs composed once per distinct set of group choices, wherever they run.

Each launcher composes every job from scratch through Hydra's
`config_loader.load_sweep_config(sweep_config, job_overrides)`: the defaults list, every
file of it read and merged, the schema checks, about 85 ms of CPU a job, which is more
than the training of a small network. The jobs of a grid over values (learning rates,
seeds) share one defaults list, and composing ends by applying the value overrides to the
merged config. So `ComposeOnceConfigLoader` composes once per process for each distinct set
of overrides that shape the defaults list (group choices, packages, `hydra.*`), keeps that
config, and gives each job a copy with its value overrides applied, then sets what Hydra
derives from a job's overrides (`hydra.overrides.task`, `hydra.job.override_dirname`) and
copies the sweep config's resolver cache, as `load_sweep_config` does. The result equals
Hydra's own (`tests/config/test_config_sweep_jobs.py` compares them).

`compose_sweep_jobs_once(loader)` makes Hydra's loader one of these (the `WarmWorkers`
callback calls it when a sweep starts): the launchers pickle the loader to their workers
with its class, so the workers compose the same way; each keeps its own cache.
"""

from __future__ import annotations

import copy

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from mlplab.config.compose import parsed_lines, shapes_defaults
from mlplab.private_api import (
    adopt_loader_class,
    apply_overrides,
    hydra_config_loader_class,
    overrides_dirname,
)

# This process's composed configs: (config name, shaping overrides) -> the config with
# Hydra's node. Config files do not change while a sweep runs.
_COMPOSED: dict[tuple, DictConfig] = {}


class ComposeOnceConfigLoader(hydra_config_loader_class()):
    """Hydra's config loader, composing a sweep's jobs once per distinct set of group
    choices (see the module docstring)."""

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides) -> DictConfig:
        hydra_overrides = list(OmegaConf.to_container(master_config.hydra.overrides.hydra))
        lines = hydra_overrides + list(sweep_overrides)
        parsed = parsed_lines(OverridesParser.create(config_loader=self), lines)
        if any(o.is_sweep_override() for o in parsed):  # Hydra's error for a sweep in a job
            return super().load_sweep_config(master_config, sweep_overrides)
        shaping = [o for o in parsed if shapes_defaults(o, self)]
        plain = [o for o in parsed if not shapes_defaults(o, self)]
        name = master_config.hydra.job.config_name
        key = (name, tuple(o.input_line for o in shaping))
        if key not in _COMPOSED:
            _COMPOSED[key] = self.load_configuration(
                config_name=name, overrides=list(key[1]), run_mode=RunMode.RUN)
        cfg = copy.deepcopy(_COMPOSED[key])
        apply_overrides(plain, cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = overrides_dirname(task, cfg)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def compose_sweep_jobs_once(loader) -> None:
    """Make Hydra's config loader of this sweep a `ComposeOnceConfigLoader`."""
    adopt_loader_class(loader, ComposeOnceConfigLoader)
