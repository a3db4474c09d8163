"""Sweep syntax, sweeper and launcher settings, and command lines that say two things.

Hydra reads `hydra.sweeper.*` and `hydra.launcher.*` only when the sweep starts, after the
sweep's parent run exists (mlplab's sweep callback creates it first), and a range or
interval is expanded only by the sweeper that meets it. Preflight (`mlplab.config.
preflight`) calls these checks on the composed config instead, so each mistake is one
`ConfigError` line before anything is written.

A command line that gives one thing two values (`experiment=a experiment=b`, `dataset=xor
dataset.name=moons`) or a value that would be dropped (`sweep=NAME` without `-m`) is
refused too, with a line saying which value would win: Hydra would quietly pick one.
"""

from __future__ import annotations

import re
from collections import defaultdict

from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from omegaconf import DictConfig, OmegaConf

from mlplab.constraints import LAUNCHER_RULES, check
from mlplab.errors import ConfigError
from mlplab.private_api import group_exists
from mlplab.search.config import OptunaSweeperConf, check_settings

# `key=choice()` (Hydra's parser only says "Error parsing override").
_EMPTY_CHOICE = re.compile(r"^\+{0,2}([^=]+)=\s*(?:tag\([^)]*,\s*)?choice\(\s*\)")


def check_empty_choices(lines) -> None:
    """Refuse `key=choice()`: a sweep over no value."""
    for line in lines:
        found = _EMPTY_CHOICE.match(str(line))
        if found:
            raise ConfigError(f"{found.group(1)}: choice() lists no value; valid: at least one, "
                              "e.g. choice(a, b)")


def is_sampling(base: DictConfig) -> bool:
    """Whether the sweeper samples (mlplab's Optuna sweeper), rather than enumerates."""
    return OmegaConf.select(base, "hydra.sweeper._target_") == OptunaSweeperConf._target_


def check_sweep_override(override: Override, *, sampling: bool | None = None) -> None:
    """An empty or zero-step range, an empty interval, and (sampling False: the basic
    sweeper) any interval, as one line naming the key. sampling None: not known yet."""
    if not override.is_sweep_override():
        return
    key, value = override.get_key_element(), override.value()
    if isinstance(value, RangeSweep):
        text = f"range({value.start}, {value.stop}, {value.step})"
        if value.step == 0:
            raise ConfigError(f"{key}: {text} has step 0; valid: a non-zero step, e.g. "
                              f"range({value.start}, {value.stop})")
        if not list(override.sweep_string_iterator()):
            raise ConfigError(f"{key}: {text} is empty (no value from {value.start} to "
                              f"{value.stop} in steps of {value.step}); valid: start below "
                              "stop, or a negative step to count down")
    if isinstance(value, IntervalSweep):
        text = f"interval({value.start}, {value.end})"
        if not value.start < value.end:
            raise ConfigError(f"{key}: {text} is empty; low ({value.start}) must be below "
                              f"high ({value.end})")
        if sampling is False:
            raise ConfigError(f"{key}: {text} must be sampled, and the basic sweeper only "
                              "lists values; valid: a list (a,b or choice(a, b) or range(a, "
                              "b)), or hydra/sweeper=mlplab_optuna (as sweep=NAME presets do)")


def check_sweeper(base: DictConfig) -> None:
    """`hydra.sweeper.*` of mlplab's Optuna sweeper against its rules (unknown keys are
    refused by the schema when the config is composed)."""
    if is_sampling(base):
        check_settings(OmegaConf.to_container(base.hydra.sweeper, resolve=True))


def check_launcher(base: DictConfig) -> None:
    """`hydra.launcher.*` against the rules of the launcher it names."""
    target = str(OmegaConf.select(base, "hydra.launcher._target_", default="") or "")
    for key, rule in LAUNCHER_RULES.get(target.rpartition(".")[2], {}).items():
        value = OmegaConf.select(base, f"hydra.launcher.{key}", default=None)
        check(f"hydra.launcher.{key}", value, rule, noun="value")


def check_unambiguous(parsed: list[Override], composer, *, multirun: bool) -> None:
    """Refuse a group chosen twice, a group's `name` key set against its choice, and a
    search space given to a single run."""
    given = defaultdict(list)
    for override in parsed:
        if override.package is None and group_exists(composer.loader, override.key_or_group):
            given[override.key_or_group].append(override)
    for group, overrides in given.items():
        if len(overrides) > 1:
            typed = ", ".join(o.input_line for o in overrides)
            raise ConfigError(f"{group}: chosen {len(overrides)} times ({typed}); the last, "
                              f"{overrides[-1].input_line}, would win; give it once")
    if not multirun and "sweep" in given and given["sweep"][0].value() not in (None, "null"):
        line = given["sweep"][0].input_line
        raise ConfigError(f"sweep: {line} is a search space for a sweep; without -m it would "
                          "be dropped and one run made; add -m (--multirun)")
    for override in parsed:
        group, _, leaf = override.get_key_element().rpartition(".")
        choice = given.get(group, [None])[-1]
        if leaf != "name" or choice is None or override.is_sweep_override() \
                or choice.is_sweep_override():
            continue
        # The name the chosen group file gives, without this override.
        rest = [o.input_line for o in parsed if o is not override and not o.is_sweep_override()]
        named = OmegaConf.select(composer.job(rest), f"{group}.name")
        if str(override.value()) != str(named):
            raise ConfigError(
                f"{group}.name: {override.value()!r} contradicts {choice.input_line} (whose "
                f"name is {named!r}); {override.input_line} would win for what is built, "
                f"{choice.input_line} for its settings and the run's name; give "
                f"{group}={override.value()} alone")
