"""Structured config of the `mlplab_optuna` Hydra sweeper (`hydra/sweeper=mlplab_optuna`).

Kept free of optuna imports: Hydra imports every module under `hydra_plugins` at start-up
(also for single runs), and this schema is all that registration needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplab.constraints import COUNT, NON_NEGATIVE_COUNT, AnyOf, Choice, Interval, Nullable, check
from mlplab.errors import ConfigError

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
DIRECTIONS = ("minimize", "maximize")


@dataclass
class SamplerConf:
    """Which Optuna sampler proposes configurations.

    `n_startup_trials` is TPE's and CMA-ES's number of random trials before modelling;
    `constant_liar` lets TPE avoid proposing a point close to one still running, in this
    batch or in another worker of the study (null: on; it changes nothing when no trial is
    running).
    """

    name: str = "tpe"
    seed: int | None = None
    n_startup_trials: int = 10
    multivariate: bool = False
    constant_liar: bool | None = None


@dataclass
class PrunerConf:
    """Which Optuna pruner stops unpromising trials early.

    Steps are epochs (1-based), so `n_warmup_steps: k` means no trial is pruned before
    epoch k. `min_resource`/`max_resource` are epochs too ("auto" lets Optuna infer them);
    `reduction_factor: null` keeps Optuna's default (4 for successive halving, 3 for
    hyperband).
    """

    name: str = "none"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    min_resource: Any = "auto"
    max_resource: Any = "auto"
    reduction_factor: int | None = None


@dataclass
class OptunaSweeperConf:
    """`hydra.sweeper` node: search space, budget, storage, pruning and seed groups.

    `direction: null` follows the app's `trainer.mode` (max -> maximize, else minimize).
    `study_name: null` derives the name from `experiment_name` plus a short digest of the
    search space and fixed overrides, so re-running the same command resumes the same
    study while a different sweep gets a fresh one. `storage: null` means
    `sqlite:///<project root>/outputs/optuna/<study_name>.db`.

    Several sweeper processes given the same `study_name` and `storage` share the study
    (`mlplab.search.workers`): `heartbeat_interval` is how often (seconds) each records that
    it is alive for the trials it waits on, and a trial whose worker was silent for
    `grace_period` seconds is failed and queued again by another worker (at once when that
    worker ran on the same host and its process is gone).
    """

    _target_: str = "hydra_plugins.mlplab_optuna_sweeper.mlplab_optuna_sweeper.MlplabOptunaSweeper"
    direction: str | None = None
    study_name: str | None = None
    storage: str | None = None
    n_trials: int = 20
    n_jobs: int = 1
    max_failures: int | None = None
    heartbeat_interval: int = 10
    grace_period: int = 60
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: PrunerConf = field(default_factory=PrunerConf)
    params: dict[str, str] = field(default_factory=dict)
    seeds: list[int] | None = None
    seed_key: str = "seed"
    group_key: str = "tags.seed_group"


# The rules of the settings above, by their dotted key under `hydra.sweeper` (checked by
# preflight before a sweep's parent run exists, and by the sweeper itself).
EPOCHS_OR_AUTO = AnyOf(Choice(("auto",)), COUNT)
SETTING_RULES = {
    "direction": Nullable(Choice(DIRECTIONS)),
    "n_trials": COUNT, "n_jobs": COUNT, "heartbeat_interval": COUNT, "grace_period": COUNT,
    "max_failures": Nullable(NON_NEGATIVE_COUNT),
    "sampler.name": Choice(SAMPLERS), "sampler.n_startup_trials": NON_NEGATIVE_COUNT,
    "pruner.name": Choice(PRUNERS), "pruner.n_startup_trials": NON_NEGATIVE_COUNT,
    "pruner.n_warmup_steps": NON_NEGATIVE_COUNT, "pruner.interval_steps": COUNT,
    "pruner.min_resource": EPOCHS_OR_AUTO, "pruner.max_resource": EPOCHS_OR_AUTO,
    "pruner.reduction_factor": Nullable(Interval(int, 2)),
}


def check_settings(settings: dict[str, Any]) -> None:
    """Raise a one-line ConfigError unless `settings` (the `hydra.sweeper` node as a plain
    dict) keeps every rule of `SETTING_RULES` and names distinct seeds."""
    for key, rule in SETTING_RULES.items():
        node, _, leaf = key.rpartition(".")
        value = (settings.get(node) or {}).get(leaf) if node else settings.get(leaf)
        check(f"hydra.sweeper.{key}", value, rule, noun="value")
    seeds = settings.get("seeds") or []
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"hydra.sweeper.seeds: seeds must be distinct, got {list(seeds)}")
