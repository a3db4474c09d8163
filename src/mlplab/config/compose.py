"""Composing mlplab's config: the one path from override strings to a job's `DictConfig`,
and the one place where Hydra's and OmegaConf's errors become a one-line `ConfigError`.

Preflight, `mlplab reproduce RUN_ID`, the tutorials and scripts all compose here:
`compose_config` (inside `hydra_on_conf`), `compose_job` (which opens that context),
`apply_value_overrides` (values onto a composed config), `JobComposer` (every job of a
sweep, one full compose per distinct set of group choices; `mlplab.config.sweep_jobs` does
the same for the launchers). `compose_train` is the same
compose for notebooks and tests, with Hydra's own exceptions.

Who composes what, and why:

- In the process that runs `mlplab train`, preflight composes every job of the command
  line once, before Hydra starts, to check it (`JobComposer`; for a sweep of the Optuna
  sweeper, the search space at each choice and both ends of each interval, with the
  overrides the sweeper adds to each job). Hydra then
  composes the sweep's own config, which is not a job's: its sweeper and launcher read it.
  The two compositions Hydra would repeat are skipped: its entry point composes the config
  only to read `hydra.mode` (given preflight's value instead), and its sweepers compose the
  jobs of a batch before launching them (those preflight checked are not composed again;
  see `mlplab.private_api`). `--cfg` is left to Hydra, which composes the config once to
  print it; preflight does not compose it too, and Hydra's error is turned into one line.
- A job's config is composed where the job runs (the launching process for a single run
  or the basic launcher, a worker for a parallel launcher), from the sweep's config and
  the job's overrides: necessarily, since the job's directory, logging and `HydraConfig`
  come from that composition. For a sweep, Hydra's config loader is given
  `mlplab.config.sweep_jobs.ComposeOnceConfigLoader`'s `load_sweep_config`: one full
  compose per process and distinct set of group choices, the value overrides applied to a
  copy, the same config as Hydra's.
- `mlplab reproduce RUN_ID` composes once (the groups the logged config names), merges the
  logged values onto it and applies the command line's overrides as values.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import re
from collections.abc import Iterator, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from mlplab.config.paths import conf_dir
from mlplab.data import DATASETS
from mlplab.errors import ConfigError, choices
from mlplab.private_api import apply_overrides, group_exists

CONFIG_NAME = "train"
RAY_HINT = "needs the optional extra: pip install -c constraints.txt -e '.[ray]'"
# What composing raises for a mistake in the config or the overrides.
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException)


@contextlib.contextmanager
def hydra_on_conf() -> Iterator[None]:
    """Hydra initialised on the project's `conf/`, as `mlplab train` sees it."""
    with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name=CONFIG_NAME):
        yield


def compose_train(*overrides: str, hydra_node: bool = False) -> DictConfig:
    """The config `mlplab train OVERRIDES` would run, for notebooks, scripts and tests
    (`hydra_node=True` keeps Hydra's own node, with the group choices). Hydra's own
    exceptions; `compose_job` is the same with one-line errors."""
    with hydra_on_conf():
        return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=hydra_node)


def compose_config(overrides: Sequence[str], *, config_name: str = CONFIG_NAME,
                   hydra_node: bool = False) -> DictConfig:
    """Compose inside an initialised Hydra (`hydra_on_conf`); errors as one ConfigError."""
    try:
        return compose(config_name, overrides=list(overrides), return_hydra_config=hydra_node)
    except COMPOSE_ERRORS as error:
        raise ConfigError(hydra_error_line(error)) from error


def compose_job(*overrides: str) -> DictConfig:
    """`mlplab train OVERRIDES`'s config (without the hydra node); one-line errors."""
    with hydra_on_conf():
        return compose_config(overrides)


def parse_overrides(overrides: Sequence[str], parser: OverridesParser | None = None):
    """Hydra's parse of override strings; a syntax error as one ConfigError."""
    try:
        return parsed_lines(parser or OverridesParser.create(), overrides)
    except HydraException as error:
        raise ConfigError(hydra_error_line(error)) from error


# Override lines this process parsed: (id of the parser's config loader, line) -> Override.
# Hydra's grammar parser takes milliseconds a line, and the jobs of a sweep repeat the same
# few lines (`optimizer.lr=0.1` in a job of every seed): preflight, the sweep's callbacks
# and each worker's composing parse them job after job. An Override is read, never
# changed, once parsed; it holds its loader, so that loader's id stays its own.
_PARSED: dict[tuple[int, str], Override] = {}
_MAX_PARSED = 20_000


def parsed_lines(parser: OverridesParser, lines: Sequence[str]) -> list[Override]:
    """`parser.parse_overrides(lines)`, each distinct line parsed once per process (for
    that parser's config loader); Hydra's errors as Hydra raises them."""
    loader = id(parser.config_loader)
    parsed = []
    for line in lines:
        key = (loader, line)
        if key not in _PARSED:
            if len(_PARSED) >= _MAX_PARSED:
                _PARSED.clear()
            _PARSED[key] = parser.parse_overrides([line])[0]
        parsed.append(_PARSED[key])
    return parsed


def apply_value_overrides(cfg: DictConfig, overrides: Sequence[str | Override]) -> None:
    """Apply value overrides (`key=value`, `+key=value`, `~key`; Hydra's grammar, parsed or
    not) to a composed config in place, with the schema's type checks, as compose would."""
    if not overrides:
        return
    strings = iter(parse_overrides([o for o in overrides if not isinstance(o, Override)]))
    parsed = [o if isinstance(o, Override) else next(strings) for o in overrides]
    try:
        apply_overrides(parsed, cfg)
    except COMPOSE_ERRORS as error:
        raise ConfigError(hydra_error_line(error)) from error


def shapes_defaults(override: Override, loader) -> bool:
    """Whether `override` decides which files are merged (a group choice, a package, or
    `hydra.*`), so that configs differing in it need composing apart; a plain value
    override can be applied to a composed copy instead."""
    return (override.package is not None or override.is_hydra_override()
            or group_exists(loader, override.key_or_group))


class JobComposer:
    """The configs of many jobs, with one full compose per distinct set of overrides that
    shape the defaults list, inside an initialised Hydra (`hydra_on_conf`).

    Overrides that pick group options (or set `hydra.*`, or use a package) decide which
    files are merged and need a full compose; plain value overrides are then applied to a
    copy, which is what compose itself does after merging, at a fraction of the cost.
    """

    def __init__(self, config_name: str = CONFIG_NAME):
        self.config_name = config_name
        self.loader = GlobalHydra.instance().config_loader()
        self.parser = OverridesParser.create(config_loader=self.loader)
        # shaping overrides -> (composed with the hydra node, the same without it)
        self._composed: dict[tuple[str, ...], tuple[DictConfig, DictConfig]] = {}

    def _split(self, overrides: Sequence[str]) -> tuple[tuple[str, ...], list[Override]]:
        parsed = parse_overrides(overrides, self.parser)
        shaping = [o for o in parsed if shapes_defaults(o, self.loader)]
        return (tuple(o.input_line for o in shaping),
                [o for o in parsed if o not in shaping])

    def _compose(self, shaping: tuple[str, ...]) -> tuple[DictConfig, DictConfig]:
        if shaping not in self._composed:
            full = compose_config(shaping, config_name=self.config_name, hydra_node=True)
            job = copy.deepcopy(full)
            with open_dict(job):  # as compose does without return_hydra_config
                del job["hydra"]
            self._composed[shaping] = (full, job)
        return self._composed[shaping]

    def job(self, overrides: Sequence[str]) -> DictConfig:
        """The job's config, as `compose_config(overrides)` gives it (no hydra node)."""
        shaping, plain = self._split(overrides)
        cfg = copy.deepcopy(self._compose(shaping)[1])
        apply_value_overrides(cfg, plain)
        return cfg

    def with_hydra_node(self, overrides: Sequence[str]) -> DictConfig:
        """The config with Hydra's node, as `compose_config(overrides, hydra_node=True)`
        gives it but for `hydra.overrides.task`, which lists only the shaping overrides."""
        shaping, plain = self._split(overrides)
        cfg = copy.deepcopy(self._compose(shaping)[0])
        apply_value_overrides(cfg, plain)
        return cfg


# -- Hydra's and OmegaConf's errors as one line -----------------------------------------

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
