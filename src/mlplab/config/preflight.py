"""Compose and validate every job of a command line before Hydra launches any of them.

Hydra composes a sweep's jobs one by one, as it launches them; a typo in the fifth value
of a grid would surface after four MLflow runs (and the sweep's parent run) exist. So the
CLI first expands the sweep itself, with Hydra's own override parser and the same
cartesian product as the basic sweeper (plus the sweeper's `hydra.sweeper.params`),
composes each job's config, checks it with `validate`, and for a sweep loads each
distinct dataset once to check what needs the data. Any problem is raised as one
`ConfigError`/`DataError` line (`hydra_error_line` turns Hydra's multi-line messages into
one), and nothing has been written anywhere.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import itertools
import json
import math
import re

from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import (
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from mlplab.config import conf_dir, validate, validate_for_dataset
from mlplab.errors import ConfigError, choices

CONFIG_NAME = "train"
# Beyond this many grid points, check each swept value once (others at their first value)
# rather than every combination: composing costs tens of milliseconds per job.
MAX_COMBINATIONS = 512
RAY_HINT = "needs the optional extra: pip install -c constraints.txt -e '.[ray]'"


_CONVERSION = re.compile(r"Value '(.*)' of type '.*' could not be converted to (\w+)")
_ARTICLE = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false",
            "String": "a string"}
_ARTICLE = collections.defaultdict(lambda: "of the declared type", _ARTICLE)


def _first_line(text) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


def hydra_error_line(error: BaseException) -> str:
    """One line naming the key (or group) and what is valid, from a Hydra/OmegaConf error."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        if group == "schema/dataset":
            from mlplab.data import DATASETS

            return (f"dataset: conf/dataset/{option}.yaml names no known loader; valid "
                    f"dataset names: {choices(DATASETS)}")
        if group == "hydra/launcher" and option == "ray":
            return f"hydra/launcher: 'ray' {RAY_HINT}; valid choices: {choices(error.options)}"
        if error.options:
            return f"{group}: unknown choice {option!r}; valid choices: {choices(error.options)}"
        return f"{error.missing_cfg_file}: no such config"
    if isinstance(error, OverrideParseException):
        return f"bad override {error.override!r}: {_first_line(error.message)}"
    cause = error.__cause__ if isinstance(error, HydraException) else error
    if isinstance(cause, ConfigKeyError | AttributeError) and getattr(cause, "full_key", None):
        schema = getattr(cause, "object_type", None)
        if schema is not None and dataclasses.is_dataclass(schema):
            valid = [f.name for f in dataclasses.fields(schema)]
            return f"{cause.full_key}: unknown key; valid keys: {choices(valid)}"
        return f"{cause.full_key}: unknown key"
    if isinstance(cause, ValidationError) and getattr(cause, "full_key", None):
        found = _CONVERSION.match(_first_line(cause.msg))
        if found:  # "Value 'abc' of type 'str' could not be converted to Float"
            value, kind = found.groups()
            return f"{cause.full_key}: invalid value {value!r}; must be {_ARTICLE[kind]}"
        return f"{cause.full_key}: {_first_line(cause.msg)}"
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        return f"{cause.full_key}: {_first_line(getattr(cause, 'msg', cause))}"
    message = _first_line(error)
    if message.startswith("Ambiguous value for argument"):
        override = message.split("'", 2)[1] if "'" in message else message
        key = override.split("=", 1)[0]
        return (f"{key}: {override!r} is a sweep; add -m (--multirun) to run one job per "
                f"value, or write {key}=[a,b] for a list value")
    if cause is not None and cause is not error and _first_line(cause):
        return f"{message} ({_first_line(cause)})"
    return message


def _sweep_values(override: Override) -> list[str]:
    """The job overrides one parsed override stands for (endpoints for an interval)."""
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


def expand_jobs(overrides: list[str], sweeper_params: dict | None) -> list[list[str]]:
    """Every job's override list, in the basic sweeper's order (config params first, the
    command line after them and winning on the same key)."""
    loader = GlobalHydra.instance().config_loader()
    parser = OverridesParser.create(config_loader=loader)
    lines = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(overrides)
    per_key: dict[str, list[str]] = {}
    for parsed in parser.parse_overrides(lines):
        per_key[parsed.get_key_element()] = _sweep_values(parsed)
    axes = list(per_key.values())
    total = 1
    for values in axes:
        total *= len(values)
    if total <= MAX_COMBINATIONS:
        return [list(job) for job in itertools.product(*axes)]
    firsts = [values[0] for values in axes]
    jobs = [firsts]
    for i, values in enumerate(axes):
        jobs += [firsts[:i] + [value] + firsts[i + 1:] for value in values[1:]]
    return jobs


def _compose(overrides: list[str], config_name: str, *, hydra_node: bool = False):
    try:
        return compose(config_name, overrides=overrides, return_hydra_config=hydra_node)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(hydra_error_line(error)) from error


def _compose_jobs(jobs: list[list[str]], config_name: str):
    """Yield (job, config) for every job, composing once per distinct set of group choices.

    Overrides that pick group options (or touch hydra.*) shape the defaults list and need a
    full compose; plain value overrides are then applied to a copy with Hydra's own override
    code, which is what compose would do after merging, at a fraction of the cost.
    """
    loader = GlobalHydra.instance().config_loader()
    parser = OverridesParser.create(config_loader=loader)
    composed = {}
    for job in jobs:
        try:
            parsed = parser.parse_overrides(job)
        except HydraException as error:
            raise ConfigError(hydra_error_line(error)) from error
        shaping = [o for o in parsed if o.package is not None or o.is_hydra_override()
                   or loader.repository.group_exists(o.key_or_group)]
        plain = [o for o in parsed if o not in shaping]
        key = tuple(o.input_line for o in shaping)
        if key not in composed:
            composed[key] = _compose(list(key), config_name)
        cfg = copy.deepcopy(composed[key])
        try:
            ConfigLoaderImpl._apply_overrides_to_config(plain, cfg)
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(hydra_error_line(error)) from error
        yield job, cfg


def _job_label(job: list[str]) -> str:
    return " ".join(job) or "(no overrides)"


def check_command_line(overrides: list[str], *, multirun: bool, config_name: str = CONFIG_NAME,
                       values: bool = True, load_data: bool = False,
                       checked: set | None = None) -> int:
    """Compose every job `mlplab train [-m] OVERRIDES` would run; return how many.

    values: also run `validate` on each config; load_data: also load each distinct dataset
    once and run `validate_for_dataset` (a sweep must do this before its parent run
    exists; a single run does it itself before it opens its MLflow run). checked: a set
    that receives `job_key` of every job composed and validated, once all of them passed
    (see `skip_recomposing`).
    """
    with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name=CONFIG_NAME):
        parser = OverridesParser.create()
        try:
            parsed = parser.parse_overrides(overrides)
        except HydraException as error:
            raise ConfigError(hydra_error_line(error)) from error
        sweeps = [o for o in parsed if o.is_sweep_override()]
        if sweeps and not multirun:
            key = sweeps[0].get_key_element()
            raise ConfigError(f"{key}: {sweeps[0].input_line!r} is a sweep; add -m (--multirun) "
                              f"to run one job per value, or write {key}=[a,b] for a list")
        if not multirun:
            jobs = [list(overrides)]
        else:
            firsts = [_sweep_values(o)[0] for o in parsed]
            base = _compose(firsts, config_name, hydra_node=True)
            params = OmegaConf.select(base, "hydra.sweeper.params")
            params = OmegaConf.to_container(params) if params is not None else None
            try:
                jobs = expand_jobs(overrides, params)
            except HydraException as error:
                raise ConfigError(hydra_error_line(error)) from error
        configs = []
        for job, cfg in _compose_jobs(jobs, config_name):
            if values:
                _validate_job(cfg, job, multirun)
            configs.append((job, cfg))
    if values:
        _check_stores(configs)
    if load_data:
        _check_with_data(configs)
    if checked is not None and values:
        parser = OverridesParser.create()
        checked.update(job_key(parser, job) for job in jobs)
    return len(jobs)


def job_key(parser: OverridesParser, job) -> frozenset[str]:
    """A job's overrides in Hydra's own spelling (`key=value` as the basic sweeper writes
    them), so the same job matches whether it was typed or expanded from a sweep. `hydra.*`
    overrides are left out: Hydra applies them to the sweep's config, not to each job's."""
    return frozenset(f"{o.get_key_element()}={o.get_value_element_as_str()}"
                     for o in parser.parse_overrides(list(job)) if not o.is_hydra_override())


@contextlib.contextmanager
def skip_recomposing(checked: set):
    """Let Hydra's basic sweeper launch the jobs in `checked` without composing them again.

    Before each batch, the sweeper composes every job once in the launching process
    (`validate_batch_is_legal`), and then the launcher composes it again to run it. The
    jobs preflight has already composed and validated would repeat the first of these for
    nothing: ~0.15 s of CPU a job, spent one job after the other before a parallel launcher
    starts. Jobs preflight did not check (a grid over `MAX_COMBINATIONS`) are still composed.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    original = BasicSweeper.validate_batch_is_legal

    def validate_unchecked(self, batch):
        parser = OverridesParser.create()
        unchecked = [job for job in batch if job_key(parser, job) not in checked]
        if unchecked:
            original(self, unchecked)

    BasicSweeper.validate_batch_is_legal = validate_unchecked
    try:
        yield
    finally:
        BasicSweeper.validate_batch_is_legal = original


def _validate_job(cfg, job, multirun) -> None:
    try:
        validate(cfg)
    except ConfigError as error:
        if multirun:
            raise ConfigError(f"{error} (job: {_job_label(job)})") from error
        raise
    except OmegaConfBaseException as error:  # an interpolation that cannot resolve
        raise ConfigError(hydra_error_line(error)) from error


def _check_stores(configs) -> None:
    """Each distinct tracking store once, before any data are loaded: an unreachable
    server must fail in seconds, not after MLflow's minutes of retries."""
    from mlplab.tracking.store import check_store

    for uri in {cfg.logger.tracking_uri for _, cfg in configs if cfg.logger.name == "mlflow"}:
        check_store(uri)


def _check_with_data(configs) -> None:
    """Load each distinct dataset once and check every job against it."""
    from mlplab.data import load_dataset

    loaded = {}
    for job, cfg in configs:
        params = OmegaConf.to_container(cfg.dataset, resolve=True)
        key = json.dumps([params, cfg.data_dir], sort_keys=True, default=str)
        if key not in loaded:
            params.pop("name")
            loaded[key] = load_dataset(cfg.dataset.name, data_dir=cfg.data_dir, seed=cfg.seed,
                                       dtype=cfg.trainer.dtype, **params)
        try:
            validate_for_dataset(cfg, loaded[key])
        except ConfigError as error:
            raise ConfigError(f"{error} (job: {_job_label(job)})") from error
