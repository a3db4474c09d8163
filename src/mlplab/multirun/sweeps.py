"""What a sweep's composed config says about how it runs: which sweeper and launcher,
whether it logs to MLflow."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
LOCAL_PARALLEL_LAUNCHER = "hydra_plugins.mlplab_local_launcher.local_launcher.LocalParallelLauncher"
# The launchers whose jobs run in the loky pool of `joblib.Parallel` (local_parallel is the
# joblib launcher's settings and pool with its own way of handing out jobs).
JOBLIB_POOL_LAUNCHERS = (JOBLIB_LAUNCHER, LOCAL_PARALLEL_LAUNCHER)
SUBMITIT_LOCAL_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
RAY_LAUNCHER = "hydra_plugins.mlplab_ray_launcher.ray_launcher.RayLauncher"
# Launchers whose jobs run in other processes of this machine, which the launching process
# stops itself on a signal (`mlplab.multirun.stopping`); the joblib ones reuse a worker
# process for job after job. (SLURM jobs are cancelled through SLURM instead.)
LOCAL_PROCESS_LAUNCHERS = {JOBLIB_LAUNCHER: True, LOCAL_PARALLEL_LAUNCHER: True,
                           SUBMITIT_LOCAL_LAUNCHER: False}
# Launchers whose jobs run in processes of their own, possibly on other machines (Ray's
# workers): each job watches the sweep's stop file itself, as no pid of it means anything
# to the launching process's host.
WATCHING_LAUNCHERS = {RAY_LAUNCHER}

def logger_enabled(config: DictConfig) -> bool:
    name = OmegaConf.select(config, "logger.name", default="mlflow")
    return str(name).lower() not in ("none", "null", "")


def grid_sweep(hydra: DictConfig) -> bool:
    """Whether the `hydra` node describes a sweep of Hydra's basic sweeper."""
    return OmegaConf.select(hydra, "sweeper._target_", default=None) == BASIC_SWEEPER


def stops_on_signal(hydra: DictConfig) -> bool:
    """Whether the `hydra` node describes a grid sweep whose jobs run in the launching
    process (the basic sweeper and launcher): a job a signal ended KILLED stops it."""
    return (grid_sweep(hydra)
            and OmegaConf.select(hydra, "launcher._target_", default=None) == BASIC_LAUNCHER)


def local_process_launcher(hydra: DictConfig) -> bool | None:
    """None when the `hydra` node's launcher is not one of `LOCAL_PROCESS_LAUNCHERS`, else
    whether its processes run one job after another (a pool)."""
    return LOCAL_PROCESS_LAUNCHERS.get(OmegaConf.select(hydra, "launcher._target_",
                                                        default=None))


def jobs_elsewhere(hydra: DictConfig) -> bool:
    """Whether the `hydra` node's launcher runs each job outside the launching process in a
    way `mlplab.multirun.stopping` can stop: a local process launcher, or Ray."""
    target = OmegaConf.select(hydra, "launcher._target_", default=None)
    return target in LOCAL_PROCESS_LAUNCHERS or target in WATCHING_LAUNCHERS


def watches_stop_file(hydra: DictConfig) -> bool:
    """Whether the `hydra` node's launcher is one whose jobs watch the stop file (Ray)."""
    return OmegaConf.select(hydra, "launcher._target_", default=None) in WATCHING_LAUNCHERS
