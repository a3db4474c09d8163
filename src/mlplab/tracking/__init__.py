"""MLflow tracking: the store, one run per training job, and sweeps as parent runs.

Nothing here imports MLflow until a client is needed, so `logger=none` runs never pay
for it. The sweep callback lives in `mlplab.multirun.callbacks` (it imports Hydra).

The names below are looked up on first use (PEP 562), so a command that needs only the
store or the params (`mlplab runs`) does not import the run-logging module and its numpy
and plotting dependencies at start-up.
"""

from importlib import import_module

_EXPORTS = {"MlflowRun": "mlplab.tracking.run", "ensure_experiment": "mlplab.tracking.store",
            "flatten_params": "mlplab.tracking.params", "get_client": "mlplab.tracking.store",
            "git_commit": "mlplab.tracking.store",
            "resolve_tracking_uri": "mlplab.tracking.store"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
