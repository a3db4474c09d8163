"""Which config keys a run logs as MLflow params, and which of them tell runs apart.

A run's resolved config is complete in its `config.yaml` artifact; as params it logs what a
person compares: the keys that decide what was trained (dataset, architecture, initializer,
optimizer, schedule, trainer, seed), and the Optuna trial it belongs to when it belongs to
one, and `trainer.resume` (the run a resumed part continued: its change is what the tag
`resume_changed_params` reports). Left out are the keys that say where or how the run was
recorded (`run_name`, `experiment_name`, `data_dir`, `logger.*`, `tags`,
`trainer.progress`, `trainer.blas_threads`): each is the run's name, its experiment, a path
of this machine, a tag already, or a display switch, and as columns they only crowd the
MLflow UI's column picker and the `mlplab runs` table.

`is_bookkeeping` keeps those keys, the Optuna trial's and `trainer.resume` out of the
columns that `mlplab runs`, the sweep plots and the UI's opening view choose among.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_PARAM_LENGTH = 6000

# Where or how a run was recorded, not what it trained (see the module docstring); the
# bookkeeping rule for tables and plots also leaves out trainer.resume.
_RECORDING_KEYS = re.compile(
    r"^(run_name|experiment_name|data_dir|tags|logger|hydra)(\.|$)"
    r"|^trainer\.(progress|blas_threads)$")
# Which Optuna trial a run was, and which run a resume continued: logged, never compared.
_TRIAL_KEYS = re.compile(r"^trial(\.|$)")
_RESUME_KEY = "trainer.resume"


def param_text(value) -> str:
    """How a config value reads as an MLflow param: YAML-like scalars, lists as [a, b]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    return str(value)


def flatten_params(config: Mapping, prefix: str = "") -> dict[str, str]:
    """A nested config as {"optimizer.lr": "0.01", ...}; lists stay one value."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, name + "."))
        else:
            flat[name] = param_text(value)[:MAX_PARAM_LENGTH]
    return flat


def compared_params(config: Mapping) -> dict[str, str]:
    """The params a training job logs: its flattened config without the recording keys,
    and without the trial keys of a run that no Optuna trial launched."""
    return {key: value for key, value in flatten_params(config).items()
            if not _RECORDING_KEYS.match(key)
            and not (_TRIAL_KEYS.match(key) and value == "null")}


def is_bookkeeping(key: str) -> bool:
    """Whether a param key records a run rather than describing what it trained."""
    return bool(_RECORDING_KEYS.match(key) or _TRIAL_KEYS.match(key) or key == _RESUME_KEY)


def varying_params(params: Iterable[Mapping[str, str]], keys: Iterable[str] | None = None
                   ) -> list[str]:
    """The keys (sorted; default: all but bookkeeping) whose value differs between the
    param dicts, a missing key counting as a value of its own."""
    params = list(params)
    if keys is None:
        # distinct keys first: a study's runs share their keys, so the rule runs once a key
        keys = {k for k in {k for p in params for k in p} if not is_bookkeeping(k)}
    return sorted(k for k in keys if len({p.get(k) for p in params}) > 1)
