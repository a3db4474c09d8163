"""Hydra targets that moved: the old dotted paths a user's own config may still name, and
the check that says where each went.

Hydra imports a `_target_` only when it instantiates it (a callback at the start of a run
or sweep), and then fails with a traceback about a module that cannot be found. Preflight
runs `check_moved_targets` on the composed config first, so an old path is one line that
names the key and the new path, before anything runs.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from mlplab.errors import ConfigError

# old path -> new path (the packages reorganisation moved the Hydra callbacks together).
MOVED_TARGETS = {
    "mlplab.tracking.sweep.MlflowSweepCallback": "mlplab.multirun.callbacks.MlflowSweepCallback",
    "mlplab.sweep_signals.StopOnSignal": "mlplab.multirun.callbacks.StopSweepOnSignal",
    "mlplab.worker_pool.WarmWorkers": "mlplab.multirun.callbacks.WarmWorkers",
}


def _moved(node, path: str):
    """(key, old path) of the first `_target_` under `node` that names a moved target."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_" and isinstance(value, str) and value in MOVED_TARGETS:
                return where, value
            found = _moved(value, where)
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _moved(value, f"{path}[{i}]")
            if found:
                return found
    return None


def check_moved_targets(cfg: DictConfig) -> None:
    """Raise a ConfigError naming the key and the new path if `cfg` names a moved target."""
    found = _moved(OmegaConf.to_container(cfg, resolve=False), "")
    if found:
        key, old = found
        raise ConfigError(f"{key}: {old!r} has moved to {MOVED_TARGETS[old]!r}; name that "
                          "instead")
