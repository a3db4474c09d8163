"""MLflow tracking: the store, one run per training job, and sweeps as parent runs.

Nothing here imports MLflow until a client is needed, so `logger=none` runs never pay
for it. The sweep callback lives in `mlplab.tracking.sweep` (it imports Hydra).
"""

from mlplab.tracking.params import flatten_params
from mlplab.tracking.run import MlflowRun
from mlplab.tracking.store import ensure_experiment, get_client, git_commit, resolve_tracking_uri

__all__ = ["MlflowRun", "ensure_experiment", "flatten_params", "get_client", "git_commit",
           "resolve_tracking_uri"]
