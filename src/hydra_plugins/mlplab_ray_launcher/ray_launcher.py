"""The `ray` launcher as Hydra sees it (`hydra/launcher=ray`, conf/hydra/launcher/ray.yaml).

Hydra instantiates launchers only from the `hydra_plugins` namespace and imports every
module there at start-up, single runs included, so this class stays a thin shell: the
implementation, and the import of Ray, are in `mlplab.multirun.ray_launcher`, loaded when
a sweep launches its first batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RayLauncher(Launcher):
    """One Ray task per job, in a fresh worker process, on a local or a remote Ray cluster.

    `ray.init` holds the keyword arguments of `ray.init` (`address`: null starts Ray in
    this process, `auto` or `HOST:PORT` joins a running cluster); `ray.remote` those of
    `ray.remote` for each job's task (`num_cpus`, `max_calls`, `max_retries`, ...). The
    same two keys as hydra-ray-launcher's local mode, so configs written for it work.
    """

    def __init__(self, ray: Any) -> None:
        self.ray_cfg = ray
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from mlplab.multirun.ray_launcher import launch

        return launch(self, job_overrides, initial_job_idx)
