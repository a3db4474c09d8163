"""Samplers and pruners from the sweeper config.

The pruner's settings are also saved on the study (`PRUNER_ATTR`) because pruning
decisions are taken inside each job, in another process, which must rebuild the very
same pruner from the storage alone.
"""

from __future__ import annotations

from typing import Any

import optuna

from mlplab.errors import ConfigError, choices
from mlplab.search.config import PRUNERS, SAMPLERS

PRUNER_ATTR = "mlplab_pruner"


def make_sampler(
    conf: Any, grid: dict[str, list] | None = None, n_existing: int = 0
) -> optuna.samplers.BaseSampler:
    """Build `hydra.sweeper.sampler`; `grid` is the finite search space for `grid`.

    A seeded sampler resuming a study with `n_existing` trials is seeded `seed + n_existing`:
    with the bare seed it would replay the random draws that started the study and propose
    the very configurations already run.
    """
    name, seed = conf["name"], conf["seed"]
    if seed is not None:
        seed += n_existing
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=conf["n_startup_trials"],
            multivariate=conf["multivariate"],
            # Running trials may belong to this batch or to other workers of the study.
            constant_liar=True if conf["constant_liar"] is None else conf["constant_liar"],
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        assert grid is not None
        return _AskTellGridSampler(grid, seed=seed)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401  (optuna's CmaEsSampler needs it at sampling time)
        except ImportError:
            raise ConfigError(
                "hydra.sweeper.sampler.name=cmaes needs the 'cmaes' package "
                "(pip install cmaes); valid choices without it: grid, random, tpe"
            ) from None
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=conf["n_startup_trials"])
    raise ConfigError(
        f"hydra.sweeper.sampler.name: unknown sampler {name!r}; valid choices: {choices(SAMPLERS)}"
    )


def pruner_settings(conf: Any) -> dict[str, Any]:
    """The pruner config as a plain dict (validated), to store on the study."""
    settings = {key: conf[key] for key in conf}
    if settings["name"] not in PRUNERS:
        raise ConfigError(
            f"hydra.sweeper.pruner.name: unknown pruner {settings['name']!r}; "
            f"valid choices: {choices(PRUNERS)}"
        )
    for key in ("min_resource", "max_resource"):
        value = settings[key]
        if value != "auto" and not (isinstance(value, int) and value >= 1):
            raise ConfigError(
                f"hydra.sweeper.pruner.{key}: expected 'auto' or a positive number of epochs, "
                f"got {value!r}"
            )
    return settings


def make_pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    """Rebuild a pruner from `pruner_settings` output (sweeper and jobs alike)."""
    name = settings["name"]
    factor = settings.get("reduction_factor")
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings["n_startup_trials"],
            n_warmup_steps=settings["n_warmup_steps"],
            interval_steps=settings["interval_steps"],
        )
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings["min_resource"], reduction_factor=factor or 4
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1 if settings["min_resource"] == "auto" else settings["min_resource"],
            max_resource=settings["max_resource"],
            reduction_factor=factor or 3,
        )
    raise ConfigError(f"hydra.sweeper.pruner.name: unknown pruner {name!r}; "
                      f"valid choices: {choices(PRUNERS)}")


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose only after-trial duty, `study.stop()` once the grid is covered,
    is left out: it is legal only inside `study.optimize`, and the sweeper already caps
    the number of trials at the size of the grid."""

    def after_trial(self, study, trial, state, values) -> None:
        pass
