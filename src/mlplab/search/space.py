"""Search space from Hydra override syntax.

A sweep is described with Hydra's own override grammar, on the command line or in the
sweeper's `params:` node:

    optimizer.lr=tag(log, interval(1e-4, 1e-1))   continuous, log scale
    trainer.batch_size=choice(32, 64, 128)         categorical
    architecture.width=range(16, 129, 16)          integer grid 16, 32, ..., 128
    model.depth=tag(int, interval(1, 4))           integer interval
    optimizer=sgd,adam                             a plain Hydra list is a choice too
    trainer.epochs=10                              fixed: passed unchanged to every job

Each searched key becomes one Optuna distribution; a sampled value is turned back into an
override string for the job (`Override`'s own formatting for non-numeric choices, so lists
and quoted strings survive the round trip).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mlplab.errors import ConfigError
from mlplab.private_api import parsed_element_value

_PRIMITIVES = (str, int, float, bool)


@dataclass
class SearchParam:
    """One searched key: its Optuna distribution and how to write a value back."""

    key: str  # override key element, prefix included ("+foo", "optimizer.lr")
    distribution: BaseDistribution
    # For categorical params: the override string of each choice, by choice index.
    choice_strings: list[str] | None = None
    grid_values: list[Any] = field(default_factory=list)

    def override(self, value: Any) -> str:
        """The job override that sets this key to a sampled `value`."""
        if self.choice_strings is not None:
            index = int(self.distribution.to_internal_repr(value))
            return f"{self.key}={self.choice_strings[index]}"
        if isinstance(self.distribution, IntDistribution):
            return f"{self.key}={int(value)}"
        return f"{self.key}={float(value)!r}"


@dataclass
class SearchSpace:
    """The searched params (by Optuna name) and the fixed overrides of a sweep."""

    params: dict[str, SearchParam]
    fixed: list[str]

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: p.distribution for name, p in self.params.items()}

    def job_overrides(self, values: dict[str, Any]) -> list[str]:
        """Overrides of one job: fixed ones first, then one per searched key."""
        return self.fixed + [self.params[name].override(values[name]) for name in self.params]

    def grid(self, key_hint: str = "hydra.sweeper.sampler.name=grid") -> dict[str, list[Any]]:
        """Every searched key's finite list of values (for Optuna's GridSampler)."""
        grid = {}
        for name, param in self.params.items():
            if not param.grid_values:
                raise ConfigError(
                    f"{name}: {key_hint} needs a finite choice() or range() for every searched "
                    "key, not interval()"
                )
            grid[name] = param.grid_values
        return grid


def _choice_param(key: str, override: Override) -> SearchParam:
    strings = list(override.sweep_string_iterator())
    values = [parsed_element_value(v) for v in override.sweep_iterator()]
    # Optuna stores categorical choices as JSON-able primitives; lists and dicts are
    # searched by their override spelling instead.
    if not all(isinstance(v, _PRIMITIVES) for v in values):
        values = strings
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{key}: a choice() lists the same value twice: {', '.join(strings)}")
    return SearchParam(
        key, CategoricalDistribution(values), choice_strings=strings, grid_values=values
    )


def _range_param(key: str, sweep: RangeSweep) -> SearchParam:
    values = list(sweep.range())
    if not values:
        raise ConfigError(f"{key}: range({sweep.start}, {sweep.stop}, {sweep.step}) is empty")
    low, high = min(values), max(values)
    step = abs(sweep.step)
    log = "log" in sweep.tags
    if all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
        if log and step != 1:
            raise ConfigError(f"{key}: tag(log, range(...)) needs step 1, got {step}")
        dist: BaseDistribution = IntDistribution(int(low), int(high), log=log, step=int(step))
        return SearchParam(key, dist, grid_values=[int(v) for v in values])
    if log:
        raise ConfigError(f"{key}: tag(log, ...) on a float range(); use tag(log, interval(a, b))")
    dist = FloatDistribution(float(low), float(high), step=float(step))
    return SearchParam(key, dist, grid_values=[float(v) for v in values])


def _interval_param(key: str, sweep: IntervalSweep) -> SearchParam:
    assert sweep.start is not None and sweep.end is not None
    low, high, log = sweep.start, sweep.end, "log" in sweep.tags
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"{key}: interval({low}, {high}) needs finite bounds with low < high")
    if log and low <= 0:
        raise ConfigError(f"{key}: tag(log, interval({low}, {high})) needs a positive low bound")
    if "int" in sweep.tags:
        return SearchParam(key, IntDistribution(math.ceil(low), math.floor(high), log=log))
    return SearchParam(key, FloatDistribution(low, high, log=log))


def parse_search_space(overrides: list[str], config_loader: Any = None) -> SearchSpace:
    """Split override strings into searched params and fixed overrides.

    A later override of the same key wins, so command-line arguments (which come after the
    sweeper's `params:`) replace a preset's search range.
    """
    parser = OverridesParser.create(config_loader=config_loader)
    parsed = parser.parse_overrides(overrides)
    latest: dict[str, Override] = {}
    for override in parsed:
        latest.pop(override.get_key_element(), None)
        latest[override.get_key_element()] = override
    params: dict[str, SearchParam] = {}
    fixed: list[str] = []
    for key, override in latest.items():
        name = override.key_or_group if override.package is None else key.lstrip("+~")
        value = override.value()
        if not override.is_sweep_override():
            fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
        elif isinstance(value, IntervalSweep):
            params[name] = _interval_param(key, value)
        elif isinstance(value, RangeSweep) and not value.shuffle:
            params[name] = _range_param(key, value)
        elif isinstance(value, (ChoiceSweep, RangeSweep)) or override.is_discrete_sweep():
            params[name] = _choice_param(key, override)
        else:
            raise ConfigError(f"{key}: unsupported sweep {override.input_line!r}")
    return SearchSpace(params, fixed)
