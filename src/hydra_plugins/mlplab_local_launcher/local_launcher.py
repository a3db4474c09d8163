"""The `local_parallel` launcher as Hydra sees it (conf/hydra/launcher/local_parallel.yaml).

The joblib launcher's settings and worker processes (loky), with mlplab's way of handing
them jobs: several jobs a task, each run without Hydra's per-job copies of the whole
config. Hydra imports every module of `hydra_plugins` at start-up, so this stays a thin
shell; the implementation is `mlplab.multirun.local_launcher`.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher


class LocalParallelLauncher(JoblibLauncher):
    """Jobs in a pool of worker processes on this machine, a few at a time per task.

    Takes the joblib launcher's keys (`n_jobs`, `timeout`, ...); `batch_size` is how many
    jobs one task runs (`auto`: up to 8, fewer when there are too few jobs to keep every
    worker busy).
    """

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from mlplab.multirun.local_launcher import launch

        return launch(self, job_overrides, initial_job_idx)
