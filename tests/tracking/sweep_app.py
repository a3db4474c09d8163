"""A Hydra app whose jobs become children of the sweep's parent run (see test_mlflow_sweep)."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from mlplab.multirun.sweeps import logger_enabled
from mlplab.tracking import MlflowRun
from mlplab.tracking.sweep import read_parent_run


@hydra.main(version_base=None, config_path="sweep_conf", config_name="config")
def main(cfg):
    if not logger_enabled(cfg):
        return None
    parent = read_parent_run(HydraConfig.get().sweep.dir) or {}
    loss = (cfg.x - 2) ** 2
    with MlflowRun(cfg.experiment_name, tracking_uri=parent.get("tracking_uri"),
                   parent_run_id=parent.get("run_id"), run_name=f"x={cfg.x}",
                   overrides=HydraConfig.get().overrides.task,
                   config=OmegaConf.to_container(cfg), plots=False) as run:
        if cfg.fail:
            raise RuntimeError("this job fails on purpose")
        run.on_epoch_end(1, {"test_loss": float(loss)})  # as a trainer would report it
    return loss


if __name__ == "__main__":
    main()
