"""Compose and validate every job of a command line before Hydra launches any of them.

Hydra composes a sweep's jobs one by one, as it launches them; a typo in the fifth value
of a grid would surface after four MLflow runs (and the sweep's parent run) exist. So the
CLI first expands the sweep itself, with Hydra's own override parser and the same
cartesian product as the basic sweeper (plus the sweeper's `hydra.sweeper.params`, and for
mlplab's Optuna sweeper the overrides it adds to each job), composes each job's config
(`mlplab.config.compose`), checks it with `validate`, and for a sweep loads each distinct
dataset once to check what needs the data. Any problem is raised as one
`ConfigError`/`DataError` line, and nothing has been written anywhere.

What preflight composed is then not composed again in this process (`Preflight.
no_recomposing`; see `mlplab.config.compose` for who composes what).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import math
import os
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mlplab.config.compose import (
    CONFIG_NAME,
    RAY_HINT,
    JobComposer,
    hydra_error_line,
    hydra_on_conf,
    parse_overrides,
    parsed_lines,
)
from mlplab.config.job_data import load_job_data, same_shapes_key
from mlplab.config.moved import check_moved_targets
from mlplab.config.sweep_settings import (
    check_empty_choices,
    check_launcher,
    check_sweep_override,
    check_sweeper,
    check_unambiguous,
    is_sampling,
)
from mlplab.config.validation import validate, validate_for_dataset
from mlplab.errors import ConfigError
from mlplab.private_api import run_mode_known, sweepers_compose_only
from mlplab.search.groups import trial_overrides

# Beyond this many grid points, check each swept value once (others at their first value)
# rather than every combination: composing costs tens of milliseconds per job.
MAX_COMBINATIONS = 512


def _sweep_values(override: Override, sampling: bool | None = None) -> list[str]:
    """The job overrides one parsed override stands for (endpoints for an interval);
    sampling: whether the sweeper samples intervals (None: not known yet)."""
    check_sweep_override(override, sampling=sampling)
    key = override.get_key_element()
    if not override.is_sweep_override():
        return [override.input_line]
    if override.is_discrete_sweep():
        return [f"{key}={value}" for value in override.sweep_string_iterator()]
    value = override.value()
    if isinstance(value, IntervalSweep):
        if "int" in value.tags:  # tag(int, interval(a, b)) samples integers
            return [f"{key}={math.ceil(value.start)}", f"{key}={math.floor(value.end)}"]
        return [f"{key}={value.start}", f"{key}={value.end}"]
    raise ConfigError(f"{override.input_line}: cannot expand this sweep")


def _expand(overrides: list[str], sweeper_params: dict | None, sampling: bool | None = None):
    """(every job's overrides, whether that is every combination: see `expand_jobs`)."""
    loader = GlobalHydra.instance().config_loader()
    parser = OverridesParser.create(config_loader=loader)
    lines = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(overrides)
    check_empty_choices(lines)
    per_key: dict[str, list[str]] = {}
    for parsed in parser.parse_overrides(lines):
        per_key[parsed.get_key_element()] = _sweep_values(parsed, sampling)
    axes = list(per_key.values())
    if math.prod(len(values) for values in axes) <= MAX_COMBINATIONS:
        return [list(job) for job in itertools.product(*axes)], True
    firsts = [values[0] for values in axes]
    jobs = [firsts]
    for i, values in enumerate(axes):
        jobs += [firsts[:i] + [value] + firsts[i + 1:] for value in values[1:]]
    return jobs, False


def expand_jobs(overrides: list[str], sweeper_params: dict | None) -> list[list[str]]:
    """Every job's override list, in the basic sweeper's order (config params first, the
    command line after them and winning on the same key); past `MAX_COMBINATIONS`, the
    first values plus each other value once."""
    return _expand(overrides, sweeper_params)[0]


def _optuna_job_extras(base) -> list[list[str]] | None:
    """The overrides mlplab's Optuna sweeper adds to a job, once per seed of a seed group
    (placeholder trial, study and storage); None for any other sweeper."""
    if not is_sampling(base):
        return None
    settings = {key: OmegaConf.select(base, f"hydra.sweeper.{key}")
                for key in ("seed_key", "group_key")}
    seeds = OmegaConf.select(base, "hydra.sweeper.seeds") or [None]
    return [trial_overrides(settings, 0, "preflight", "sqlite://" if i == 0 else None, seed)
            for i, seed in enumerate(seeds)]


def _job_label(job: list[str]) -> str:
    return " ".join(job) or "(no overrides)"


@dataclasses.dataclass
class Preflight:
    """What `check_jobs` composed and checked (all of it passed).

    keys: `job_key` of every job composed and validated; every_job: whether that covers
    every job the sweep can make (an Optuna search space composed at every choice and both
    ends of every interval, with the sweeper's own overrides); run_mode: the config's
    `hydra.mode`, as Hydra's entry point would compose it to read.
    """

    jobs: int
    keys: set
    every_job: bool = False
    run_mode: Any = None

    @contextlib.contextmanager
    def no_recomposing(self):
        """Around Hydra's entry point: compose nothing this check has composed already."""
        with skip_recomposing(self.keys, every_job=self.every_job), \
                run_mode_known(self.run_mode):
            yield


def check_jobs(overrides: list[str], *, multirun: bool, config_name: str = CONFIG_NAME,
               values: bool = True, load_data: bool = False) -> Preflight:
    """Compose every job `mlplab train [-m] OVERRIDES` would run, and check them.

    values: also run `validate` on each config; load_data: also load each distinct dataset
    once and run `validate_for_dataset` (a sweep must do this before its parent run
    exists; a single run does it itself before it opens its MLflow run).
    """
    with hydra_on_conf():
        composer = JobComposer(config_name)
        check_empty_choices(overrides)
        parsed = parse_overrides(overrides)
        for override in parsed:
            check_sweep_override(override)
        sweeps = [o for o in parsed if o.is_sweep_override()]
        if sweeps and not multirun:
            key = sweeps[0].get_key_element()
            raise ConfigError(f"{key}: {sweeps[0].input_line!r} is a sweep; add -m (--multirun) "
                              f"to run one job per value, or write {key}=[a,b] for a list")
        # The config with Hydra's node, for the sweep (or the single job) as a whole.
        base = composer.with_hydra_node([_sweep_values(o)[0] for o in parsed])
        check_moved_targets(base)
        check_unambiguous(parsed, composer, multirun=multirun)
        check_launcher_installed(base)
        if multirun:
            check_sweeper(base)
            check_launcher(base)
        complete, extras = True, None
        if not multirun:
            jobs = [list(overrides)]
        else:
            params = OmegaConf.select(base, "hydra.sweeper.params")
            params = OmegaConf.to_container(params) if params is not None else None
            try:
                jobs, complete = _expand(overrides, params, is_sampling(base))
            except HydraException as error:
                raise ConfigError(hydra_error_line(error)) from error
            extras = _optuna_job_extras(base)
        configs = []
        for job in jobs:
            for extra in extras or [[]]:
                cfg = composer.job(job + extra)
                if values:
                    _validate_job(cfg, job, multirun)
                configs.append((job, cfg))
    if values:
        _check_stores(configs)
    if load_data:
        _check_with_data(configs)
    if values and multirun:  # last: it creates a new store's file
        _check_stores(configs, open_them=True)
    parser = OverridesParser.create()
    return Preflight(jobs=len(configs),
                     keys={job_key(parser, job) for job in jobs} if values else set(),
                     every_job=bool(values and extras and complete),
                     run_mode=OmegaConf.select(base, "hydra.mode"))


def check_launcher_installed(base) -> None:
    """`hydra/launcher=ray` is always composable (its config is ours), but its jobs need
    Ray, an optional extra: say so before the sweep's parent run exists."""
    target = str(OmegaConf.select(base, "hydra.launcher._target_", default="") or "")
    if target.endswith(".RayLauncher") and importlib.util.find_spec("ray") is None:
        raise ConfigError(f"hydra/launcher: 'ray' {RAY_HINT}; valid choices without it: "
                          "basic, joblib, local_parallel, submitit_local, submitit_slurm")


def check_command_line(overrides: list[str], *, multirun: bool, config_name: str = CONFIG_NAME,
                       values: bool = True, load_data: bool = False,
                       checked: set | None = None) -> int:
    """`check_jobs`, returning how many configs were composed. checked: a set that
    receives `job_key` of every job composed and validated, once all of them passed (see
    `skip_recomposing`)."""
    result = check_jobs(overrides, multirun=multirun, config_name=config_name,
                        values=values, load_data=load_data)
    if checked is not None:
        checked.update(result.keys)
    return result.jobs


def job_key(parser: OverridesParser, job) -> frozenset[str]:
    """A job's overrides in Hydra's own spelling (`key=value` as the basic sweeper writes
    them), so the same job matches whether it was typed or expanded from a sweep. `hydra.*`
    overrides are left out: Hydra applies them to the sweep's config, not to each job's."""
    return frozenset(f"{o.get_key_element()}={o.get_value_element_as_str()}"
                     for o in parsed_lines(parser, list(job)) if not o.is_hydra_override())


@contextlib.contextmanager
def skip_recomposing(checked: set, *, every_job: bool = False):
    """Let Hydra's sweepers launch the jobs in `checked` (all, with `every_job`) without
    composing them again.

    Before each batch, the basic sweeper composes every job once in the launching process
    (mlplab's Optuna sweeper its first batch), and then the launcher composes it again to
    run it. The jobs preflight has already composed and validated would repeat the first
    of these for nothing, one job after the other before a parallel launcher starts
    (`benchmarks/bench_harness.py` measures what a sweep's launching process costs).
    Jobs preflight did not check (a grid over `MAX_COMBINATIONS`)
    are still composed.
    """
    parser = OverridesParser.create()

    def needs_composing(job) -> bool:
        return not every_job and job_key(parser, job) not in checked

    with sweepers_compose_only(needs_composing):
        yield


def _validate_job(cfg, job, multirun) -> None:
    if multirun and OmegaConf.select(cfg, "trainer.resume") is not None:
        # Every job would re-open and continue the same run.
        raise ConfigError(f"trainer.resume: {cfg.trainer.resume} is one run and a sweep (-m) "
                          "runs many jobs; valid choices: resume it without -m, with the "
                          "overrides it was trained with")
    try:
        validate(cfg)
    except ConfigError as error:
        if multirun:
            raise ConfigError(f"{error} (job: {_job_label(job)})") from error
        raise
    except OmegaConfBaseException as error:  # an interpolation that cannot resolve
        raise ConfigError(hydra_error_line(error)) from error


def _check_stores(configs, *, open_them: bool = False) -> None:
    """Each distinct tracking store once, before any data are loaded: an unreachable
    server must fail in seconds, not after MLflow's minutes of retries. open_them: also
    check each existing SQLite store's integrity (a sweep's parent run is created before
    any job could find the file corrupt), with SQLite alone: the launching process of a
    parallel sweep leaves MLflow to its workers."""
    # Imported here, for start-up speed.
    from mlplab.tracking.store import check_store
    from mlplab.tracking.store_errors import check_sqlite_file

    for uri in {cfg.logger.tracking_uri for _, cfg in configs if cfg.logger.name == "mlflow"}:
        resolved = check_store(uri)
        path = resolved.removeprefix("sqlite:///")
        if open_them and path != resolved and os.path.isfile(path):
            check_sqlite_file(path, resolved)


def _check_with_data(configs) -> None:
    """Load each distinct dataset once and check every job against it (the jobs' seeds and
    dtypes do not change what is checked: sizes, the task)."""
    loaded = {}
    for job, cfg in configs:
        key = same_shapes_key(cfg)
        if key not in loaded:
            loaded[key] = load_job_data(cfg)
        try:
            validate_for_dataset(cfg, loaded[key])
        except ConfigError as error:
            raise ConfigError(f"{error} (job: {_job_label(job)})") from error
