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
# The config `reused_sweep_config` last gave for each such key, with the keys its value
# overrides set: (config name, shaping overrides) -> (keys, config).
_REUSED: dict[tuple, tuple[tuple, DictConfig]] = {}


class ComposeOnceConfigLoader(hydra_config_loader_class()):
    """Hydra's config loader, composing a sweep's jobs once per distinct set of group
    choices (see the module docstring)."""

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides) -> DictConfig:
        return self._sweep_config(master_config, sweep_overrides, reuse=False)

    def reused_sweep_config(self, master_config: DictConfig, sweep_overrides) -> DictConfig:
        """`load_sweep_config`'s config of this job, as the same object for consecutive
        jobs of one set of group choices whose value overrides change the same existing
        keys (a grid's do): the last job's config with this job's values set, instead of
        a fresh copy (a deep copy of a composed config with its `hydra` node costs more
        CPU than a small run's training). Only for a launcher that runs one job after
        the other in a process and keeps nothing of a job's config once it ended
        (`mlplab.multirun.local_launcher`); the task gets a copy of its part."""
        return self._sweep_config(master_config, sweep_overrides, reuse=True)

    def compose_ahead(self, master_config: DictConfig, jobs) -> dict[tuple, DictConfig]:
        """Compose, here and now, what the jobs `jobs` (override lists) of this sweep need:
        one config per distinct set of group choices; those configs by key, for
        `adopt_composed` in the processes that will run the jobs (the launching process
        of a pool sweep does it while the pool's workers start, and sends them along)."""
        keys = []
        for job in jobs:
            parsed = self._parsed(master_config, job)
            if not any(o.is_sweep_override() for o in parsed):
                keys.append(self._composed_key(master_config, parsed)[0])
        return {key: _COMPOSED[key] for key in keys}

    def _parsed(self, master_config: DictConfig, sweep_overrides) -> list:
        hydra_overrides = list(OmegaConf.to_container(master_config.hydra.overrides.hydra))
        lines = hydra_overrides + list(sweep_overrides)
        return parsed_lines(OverridesParser.create(config_loader=self), lines)

    def _composed_key(self, master_config: DictConfig, parsed) -> tuple[tuple, list]:
        """(the key of this job's composed config in `_COMPOSED`, composing it if it is
        not there yet; the job's value overrides)."""
        shaping = [o for o in parsed if shapes_defaults(o, self)]
        plain = [o for o in parsed if not shapes_defaults(o, self)]
        name = master_config.hydra.job.config_name
        key = (name, tuple(o.input_line for o in shaping))
        if key not in _COMPOSED:
            _COMPOSED[key] = self.load_configuration(
                config_name=name, overrides=list(key[1]), run_mode=RunMode.RUN)
        return key, plain

    def _sweep_config(self, master_config: DictConfig, sweep_overrides, *,
                      reuse: bool) -> DictConfig:
        parsed = self._parsed(master_config, sweep_overrides)
        if any(o.is_sweep_override() for o in parsed):  # Hydra's error for a sweep in a job
            return super().load_sweep_config(master_config, sweep_overrides)
        key, plain = self._composed_key(master_config, parsed)
        changed = tuple(o.key_or_group for o in plain)
        plain_changes = all(not (o.is_add() or o.is_force_add() or o.is_delete())
                            for o in plain)
        previous = _REUSED.pop(key, None)
        if reuse and plain_changes and previous is not None and previous[0] == changed:
            cfg = previous[1]
            OmegaConf.set_readonly(cfg.hydra, None)  # the last job's run set it
        else:
            cfg = copy.deepcopy(_COMPOSED[key])
        apply_overrides(plain, cfg)
        if reuse and plain_changes:
            _REUSED[key] = (changed, cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = overrides_dirname(task, cfg)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def adopt_composed(composed: dict[tuple, DictConfig]) -> None:
    """Take configs another process composed (`compose_ahead`) into this process's cache,
    where it has none of its own yet."""
    for key, cfg in composed.items():
        _COMPOSED.setdefault(key, cfg)


def compose_sweep_jobs_once(loader) -> None:
    """Make Hydra's config loader of this sweep a `ComposeOnceConfigLoader`."""
    adopt_loader_class(loader, ComposeOnceConfigLoader)
