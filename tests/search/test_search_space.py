"""Hydra override syntax -> Optuna distributions -> job overrides, and the config checks."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mlplab.errors import ConfigError
from mlplab.search.config import OptunaSweeperConf
from mlplab.search.factories import make_pruner, make_sampler, pruner_settings
from mlplab.search.space import parse_search_space


def _hydra_value(override: str):
    """What Hydra itself makes of a job override (the independent check of a round trip)."""
    return OverridesParser.create().parse_overrides([override])[0].value()


def test_each_sweep_syntax_becomes_the_matching_distribution():
    space = parse_search_space([
        "optimizer.lr=tag(log, interval(1e-4, 1e-1))",
        "width=range(16, 129, 16)",
        "depth=tag(int, interval(1, 4))",
        "frac=range(0, 1, 0.25)",
        "batch=choice(32, 64)",
        "optimizer=sgd,adam",
        "+hidden=choice([64], [128, 64])",
    ])
    d = space.distributions
    assert d["optimizer.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["width"] == IntDistribution(16, 128, step=16)
    assert d["depth"] == IntDistribution(1, 4)
    assert d["frac"] == FloatDistribution(0.0, 0.75, step=0.25)
    assert d["batch"] == CategoricalDistribution([32, 64])
    assert d["optimizer"] == CategoricalDistribution(["sgd", "adam"])
    assert d["hidden"] == CategoricalDistribution(["[64]", "[128,64]"])
    assert space.fixed == []
    assert space.params["width"].grid_values == list(range(16, 129, 16))


def test_sampled_values_survive_the_trip_back_through_hydra():
    space = parse_search_space([
        "optimizer.lr=tag(log, interval(1e-4, 1e-1))", "depth=tag(int, interval(1, 4))",
        "+hidden=choice([64], [128, 64])", "name=choice('a b', c)", "flag=choice(true, false)",
    ])
    values = {"optimizer.lr": 0.00012345678901234567, "depth": 3, "hidden": "[128,64]",
              "name": "a b", "flag": False}
    overrides = dict(o.split("=", 1) for o in space.job_overrides(values))
    assert _hydra_value(f"x={overrides['optimizer.lr']}") == values["optimizer.lr"]
    assert _hydra_value(f"x={overrides['depth']}") == 3
    assert _hydra_value(f"x={overrides['+hidden']}") == [128, 64]
    assert _hydra_value(f"x={overrides['name']}") == "a b"
    assert _hydra_value(f"x={overrides['flag']}") is False


def test_fixed_overrides_pass_through_and_later_overrides_win():
    space = parse_search_space([
        "optimizer.lr=tag(log, interval(1e-4, 1e-1))",   # from the preset's params
        "trainer.epochs=5", "~trainer.resume", "+tags.owner=me",
        "optimizer.lr=choice(0.1, 0.2)",                 # the command line replaces it
        "trainer.epochs=7",
    ])
    assert space.distributions["optimizer.lr"] == CategoricalDistribution([0.1, 0.2])
    assert space.fixed == ["~trainer.resume", "+tags.owner=me", "trainer.epochs=7"]
    assert space.job_overrides({"optimizer.lr": 0.2})[-1] == "optimizer.lr=0.2"


@pytest.mark.parametrize("override, fragment", [
    ("x=tag(log, interval(0, 1))", "positive low bound"),
    ("x=interval(2, 1)", "low < high"),
    ("x=choice(1, 1)", "same value twice"),
    ("x=range(5, 5)", "empty"),
])
def test_bad_search_ranges_are_config_errors_naming_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_search_space([override])
    assert str(info.value).startswith("x")


def test_grid_needs_finite_values():
    assert parse_search_space(["a=choice(1, 2)", "b=range(3)"]).grid() == {
        "a": [1, 2], "b": [0, 1, 2]}
    with pytest.raises(ConfigError, match="lr: .*grid"):
        parse_search_space(["a=choice(1, 2)", "lr=interval(0.1, 1)"]).grid()


def _conf(**changes):
    conf = OmegaConf.structured(OptunaSweeperConf)
    for key, value in changes.items():
        OmegaConf.update(conf, key, value)
    return OmegaConf.to_container(conf)


def test_unknown_sampler_and_pruner_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="sampler.name: .*'bayes'.*random, tpe"):
        make_sampler(_conf(**{"sampler.name": "bayes"})["sampler"])
    with pytest.raises(ConfigError, match="pruner.name: .*'early'.*hyperband, median"):
        pruner_settings(_conf(**{"pruner.name": "early"})["pruner"])
    with pytest.raises(ConfigError, match="pruner.max_resource"):
        pruner_settings(_conf(**{"pruner.max_resource": 0})["pruner"])


def test_pruners_are_rebuilt_from_their_saved_settings():
    import optuna

    conf = _conf(**{"pruner.name": "median", "pruner.n_warmup_steps": 3})["pruner"]
    assert isinstance(make_pruner(pruner_settings(conf)), optuna.pruners.MedianPruner)
    for name, kind in [("none", optuna.pruners.NopPruner),
                       ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
                       ("hyperband", optuna.pruners.HyperbandPruner)]:
        settings = pruner_settings(_conf(**{"pruner.name": name})["pruner"])
        assert isinstance(make_pruner(settings), kind)


def test_direction_follows_the_monitored_metric_unless_given():
    from mlplab.search.sweeper import OptunaSweeperImpl

    sweeper = OptunaSweeperImpl(_conf())
    sweeper.config = OmegaConf.create({"trainer": {"mode": "max"}})
    assert sweeper._validated_settings()["direction"] == "maximize"
    sweeper.config = OmegaConf.create({"trainer": {"mode": "min"}})
    assert sweeper._validated_settings()["direction"] == "minimize"
    sweeper = OptunaSweeperImpl(_conf(direction="maximize"))
    sweeper.config = OmegaConf.create({})
    assert sweeper._validated_settings()["direction"] == "maximize"
    sweeper = OptunaSweeperImpl(_conf(seeds=[1, 1]))
    sweeper.config = OmegaConf.create({})
    with pytest.raises(ConfigError, match="hydra.sweeper.seeds"):
        sweeper._validated_settings()


def test_preflight_checks_integer_intervals_at_integer_endpoints():
    # `mlplab train -m` composes each sweep's endpoints before launching; an integer key
    # searched with tag(int, interval(...)) must not be checked at "16.0".
    from mlplab.config.preflight import _sweep_values

    override = OverridesParser.create().parse_overrides(["b=tag(int, interval(15.5, 64))"])[0]
    assert _sweep_values(override) == ["b=16", "b=64"]
