"""Dataset schemas, derived from the data loaders instead of written out a second time.

`mlplab.data.dataset_defaults(name)` lists the keys a dataset's loader takes with their
defaults; each becomes a field of a dataclass typed after its default (a null default
types nothing: the loader checks those values itself). The primary config puts the
chosen dataset's schema first in its defaults list (`/schema/dataset@dataset:
${dataset}`), so a misspelt `dataset.*` key or a value of the wrong type fails at compose
time, exactly like the other groups.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

from mlplab.config.paths import conf_dir
from mlplab.data import DATASETS, dataset_defaults

_TYPED = (bool, int, float, str)


def _field_type(default) -> Any:
    for kind in _TYPED:  # bool before int: True is an int too
        if type(default) is kind:
            return kind
    return Any


def _field(default):
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda value=default: type(value)(value))
    return dataclasses.field(default=default)


def dataset_schema(name: str) -> type:
    """The dataclass of dataset `name`'s keys (created once, kept in this module so the
    configs that reference it can be pickled into launcher worker processes)."""
    class_name = "".join(part.title() for part in name.split("_")) + "DatasetConfig"
    module = sys.modules[__name__]
    if hasattr(module, class_name):
        return getattr(module, class_name)
    fields = [(key, _field_type(default), _field(default))
              for key, default in dataset_defaults(name).items()]
    schema = dataclasses.make_dataclass(class_name, fields)
    schema.__module__ = __name__
    schema.__doc__ = f"Keys of `dataset={name}` (from the loader's keyword defaults)."
    setattr(module, class_name, schema)
    return schema


def dataset_config_names(directory: Path) -> dict[str, str]:
    """{config file stem: dataset name} for the files in conf/dataset (a file may be a
    variant of a loader, e.g. `skalski_moons.yaml` with `name: moons`)."""
    names = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            content = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # Hydra reports a broken file itself, with its path
        if isinstance(content, dict) and isinstance(content.get("name"), str):
            names[path.stem] = content["name"]
    return names


def register_dataset_schemas(store) -> None:
    """Store `schema/dataset/<option>` for every loader and every conf/dataset file."""
    options = {name: name for name in DATASETS}
    options.update({stem: name for stem, name in dataset_config_names(conf_dir() / "dataset")
                    .items() if name in DATASETS})
    for option, name in options.items():
        store.store(group="schema/dataset", name=option, node=dataset_schema(name))
