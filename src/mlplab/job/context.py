"""What a job knows of how Hydra launched it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from mlplab.config import preset_name

_PARALLEL_LAUNCHERS = ("joblib", "submitit", "ray", "rq")


@dataclass
class JobContext:
    """What a job knows of how Hydra launched it."""

    preset: str = "default"
    overrides: list[str] = field(default_factory=list)
    sweep_dir: str | None = None  # set for the jobs of a sweep
    parallel: bool = False  # launched next to other jobs on the same cores
    cpus: int | None = None  # cores the cluster allocated to this job, when it says
    # Tags for the job's run that say where it ran: under SLURM its job id (stable across
    # requeues, so a requeued job finds its run again) and how often it was restarted.
    run_tags: dict[str, str] = field(default_factory=dict)


def context_from_hydra() -> JobContext:
    """The JobContext of the Hydra job running in this process."""
    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN
    target = str(OmegaConf.select(hydra, "launcher._target_", default="") or "")
    on_cluster = target.endswith("SlurmLauncher")  # each job has cores of its own
    run_tags = {}
    if on_cluster:
        run_tags["slurm_job_id"] = str(hydra.job.id)
        run_tags["slurm_restarts"] = os.environ.get("SLURM_RESTART_COUNT", "0")
    return JobContext(preset=preset_name(),
                      overrides=list(hydra.overrides.task),
                      sweep_dir=str(hydra.sweep.dir) if multirun else None,
                      parallel=multirun and not on_cluster
                      and any(name in target for name in _PARALLEL_LAUNCHERS),
                      # SLURM gives a task one CPU unless told otherwise.
                      cpus=(OmegaConf.select(hydra, "launcher.cpus_per_task", default=None)
                            or 1) if on_cluster else None,
                      run_tags=run_tags)
