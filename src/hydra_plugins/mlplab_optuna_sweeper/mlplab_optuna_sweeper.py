"""The `mlplab_optuna` sweeper as Hydra sees it.

Hydra only instantiates plugin classes that live under the `hydra_plugins` namespace and
imports every such module at start-up, single runs included. This class therefore stays a
thin shell: the implementation (and the optuna import) is in `mlplab.search.sweeper` and is
loaded only when a sweep actually starts.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from mlplab.search.config import OptunaSweeperConf

ConfigStore.instance().store(
    group="hydra/sweeper", name="mlplab_optuna", node=OptunaSweeperConf, provider="mlplab"
)


class MlplabOptunaSweeper(Sweeper):
    """Optuna ask/tell sweeper with persistent studies, pruning and seed groups."""

    def __init__(self, **settings: Any) -> None:
        from mlplab.search.sweeper import OptunaSweeperImpl

        self._impl = OptunaSweeperImpl(settings)

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self._impl.setup(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        return self._impl.sweep(arguments)
