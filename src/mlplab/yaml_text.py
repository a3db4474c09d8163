"""YAML text of plain configs, as OmegaConf writes it, through libyaml.

`config_yaml(container)` gives the text `OmegaConf.to_yaml` gives for the same plain
container (keys in order, block style, strings that read as other types quoted) in about
a tenth of the time: OmegaConf's dumper is PyYAML's pure-Python one. Used for a run's
`config.yaml` artifact and a sweep job's `.hydra/*.yaml`.
"""

from __future__ import annotations

import yaml


class _ConfigDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """PyYAML's safe dumper (libyaml's emitter when PyYAML has it), quoting strings as
    OmegaConf's dumper does."""


# The words YAML 1.1 reads as booleans; OmegaConf quotes them, and any string that reads as
# a number (`1e-3` included, which PyYAML alone would leave bare and OmegaConf would load
# as a float).
_YAML_BOOLEANS = {"y", "yes", "n", "no", "true", "false", "on", "off"}


def _represent_str(dumper, text: str):
    try:
        float(text)
        quoted = True
    except ValueError:
        quoted = text.lower() in _YAML_BOOLEANS
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="'" if quoted else None)


_ConfigDumper.add_representer(str, _represent_str)


def config_yaml(config) -> str:
    """A plain config (mapping or list) as OmegaConf's `to_yaml` writes it."""
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True)
