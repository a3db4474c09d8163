"""`load_dataset(name, ...)`: the one entry point the app uses, and the table of datasets.

A dataset's config keys are the keyword parameters of its generator plus the split and
scaling keys in its spec, with the same defaults as `conf/dataset/<name>.yaml`. Unknown
keys are rejected with the list of valid ones, so a typo never silently does nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from mlplab.data import generators
from mlplab.data.assemble import assemble
from mlplab.data.checks import check_dtype, check_int
from mlplab.data.dataset import Dataset
from mlplab.data.mnist import load_mnist
from mlplab.data.user_file import load_file
from mlplab.errors import ConfigError, choices

# Keys for which null is a meaningful value (the run seed, no validation part, all samples,
# the default directory), whatever their default; a config schema must let them be null.
NULLABLE_KEYS = frozenset({"random_state", "split_seed", "val_size", "n_train", "n_test",
                           "directory", "target", "features", "sha256"})

# Split/scale keys shared by the generated datasets, with their usual defaults.
SPLIT_DEFAULTS = {"test_size": 0.2, "split": "shuffled", "stratify": False, "split_seed": None,
                  "val_size": None, "scale": "none"}


def keyword_defaults(fn: Callable, skip=("seed", "dtype", "data_dir")) -> dict:
    """{name: default} of fn's parameters that have defaults, minus run-level ones."""
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params
            if p.default is not inspect.Parameter.empty and p.name not in skip}


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: `build(seed=, dtype=, data_dir=, **keys)` and its keys' defaults."""

    name: str
    build: Callable[..., Dataset]
    defaults: dict


def _generated(name: str, generate, **split_overrides) -> DatasetSpec:
    split_defaults = dict(SPLIT_DEFAULTS, **split_overrides)

    def build(*, seed, dtype, data_dir, **params):
        own = {k: v for k, v in params.items() if k not in split_defaults}
        split = {k: params.get(k, d) for k, d in split_defaults.items()}
        return assemble(name, generate(seed=seed, **own), seed=seed, dtype=dtype, **split)

    return DatasetSpec(name, build, {**keyword_defaults(generate), **split_defaults})


def _mnist(kind: str) -> DatasetSpec:
    def build(*, seed, dtype, data_dir, split_seed=None, **params):
        return load_mnist(kind=kind, dtype=dtype, data_dir=data_dir,
                          split_seed=seed if split_seed is None else split_seed, **params)

    skip = ("seed", "dtype", "data_dir", "kind")
    return DatasetSpec(kind, build, keyword_defaults(load_mnist, skip))


def _user_file() -> DatasetSpec:
    def build(*, seed, dtype, data_dir, **params):
        return load_file(seed=seed, dtype=dtype, data_dir=data_dir, **params)

    return DatasetSpec("file", build, keyword_defaults(load_file))


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    _generated("sum_diff", generators.sum_diff, test_size=0.3, split="ordered",
               scale="standardize", target_scale="standardize"),
    _generated("circles", generators.circles, test_size=0.1, split_seed=42),
    _generated("moons", generators.moons, test_size=0.1, split_seed=42),
    _generated("blobs", generators.blobs),
    _generated("xor", generators.xor),
    _generated("spirals", generators.spirals),
    _generated("digits", generators.digits, scale="max"),
    _mnist("mnist"),
    _mnist("fashion_mnist"),
    _user_file(),
)}


def dataset_defaults(name: str) -> dict:
    """{key: default} for `dataset=<name>` (what conf/dataset/<name>.yaml must agree with)."""
    return {"name": name, **_spec(name).defaults}


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"dataset.name: unknown dataset {name!r}; valid choices: "
                          f"{choices(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, *, data_dir=None, seed: int = 0, dtype="float64",
                 **params) -> Dataset:
    """Build dataset `name` with its `dataset.*` keys `params`.

    `seed` is the run seed: it seeds data generation and shuffling wherever the config
    leaves `random_state`/`split_seed` null. `data_dir` is where file-backed datasets are
    looked up (default: `$MLPLAB_DATA_DIR` or `<project root>/data`).
    """
    spec = _spec(name)
    seed = check_int("seed", seed, minimum=0)
    dtype = check_dtype(dtype)
    valid = spec.defaults
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"dataset.{unknown[0]}: unknown key for dataset {name!r}; valid "
                          f"keys: {choices(valid)}")
    return spec.build(seed=seed, dtype=dtype, data_dir=data_dir, **params)
