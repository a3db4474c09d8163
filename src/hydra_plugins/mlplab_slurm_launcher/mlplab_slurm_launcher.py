"""The SLURM launcher as Hydra sees it: hydra-submitit-launcher's, with mlplab's handling
of requeues and of jobs that fail or are cancelled.

`hydra/launcher=submitit_slurm` selects it: this module stores its config under that name,
in place of the upstream plugin's (Hydra scans `hydra_plugins.hydra_submitit_launcher`
before `hydra_plugins.mlplab_slurm_launcher`, in either kind of install; a test checks
it). A YAML file of that name in `conf/` would not do: Hydra would match it against the
upstream schema of the same name, with a deprecation warning at every start. The keys are
upstream's (`SlurmQueueConf`); only `_target_` and the default of `max_num_timeout` differ.

Hydra imports every `hydra_plugins` module at start-up, single runs
included, so this stays a thin shell: submitit and the implementation
(`mlplab.multirun.slurm_array` for the launching side, `mlplab.multirun.slurm_job` for
each job) are imported only when a sweep launches or a job starts.
"""

# No `from __future__ import annotations`: Hydra executes this module without registering
# it in sys.modules, where dataclasses look string annotations up.
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


@dataclass
class MlplabSlurmQueueConf(SlurmQueueConf):
    _target_: str = (
        "hydra_plugins.mlplab_slurm_launcher.mlplab_slurm_launcher.MlplabSlurmLauncher"
    )
    # Requeues allowed for reaching the time limit (preemptions do not count): a requeued
    # job continues its run from the checkpoint it wrote when SLURM warned it (SIGUSR2,
    # `signal_delay_s` before the limit). Upstream's default is 0.
    max_num_timeout: int = 3


ConfigStore.instance().store(
    group="hydra/launcher", name="submitit_slurm", node=MlplabSlurmQueueConf,
    provider="mlplab"
)


class MlplabSlurmLauncher(SlurmLauncher):
    """Submits a sweep as one SLURM array; see `mlplab.multirun.slurm_array`."""

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        # Imported here, not at the top: see the module docstring (start-up speed).
        from mlplab.multirun.slurm_array import launch_array

        return launch_array(self, job_overrides, initial_job_idx)

    def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int,
                 job_id: str, singleton_state: dict[type, Any]) -> JobReturn:
        """One array task, in the job's process on a compute node."""
        # Imported here, not at the top: see the module docstring (start-up speed).
        from mlplab.multirun.slurm_job import run_array_task

        return run_array_task(self, sweep_overrides, job_dir_key, job_num, singleton_state)
