"""A tiny Hydra app standing in for `mlplab train` in the sweeper tests.

It "trains" a deterministic objective for `epochs` epochs; the loss at epoch e is

    (x - 1)^2 + penalty[opt] + 0.1 * seed + 2 / e

so the curves of two configurations never cross (pruning cannot discard the eventual
winner) and the optimum is x=1, opt=b whatever the seed. Every epoch it runs and every
result it returns are appended as JSON lines to `log_file`, which is how the tests count
work independently of Optuna's own bookkeeping. It reports through the real
`PruningCallback`, driven by a minimal trainer exposing `request_stop`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mlplab.search.pruning import PruningCallback

PENALTY = {"a": 0.5, "b": 0.0, "c": 1.0}


def toy_loss(x: float, opt: str, seed: int, epoch: int) -> float:
    return (x - 1) ** 2 + PENALTY[opt] + 0.1 * seed + 2.0 / epoch


class ToyTrainer:
    def __init__(self) -> None:
        self.stop_reason: str | None = None

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason


def _append(path: str | None, record: dict) -> None:
    if path:
        with Path(path).open("a") as handle:
            handle.write(json.dumps(record) + "\n")


@hydra.main(version_base="1.3", config_path="toy_conf", config_name="toy")
def main(cfg: DictConfig) -> float:
    trainer = ToyTrainer()
    callback = PruningCallback(cfg.trial, "loss", "min") if cfg.trial.storage else None
    if callback is not None:
        callback.on_train_start(trainer)
    ident = {"trial": cfg.trial.number, "seed": cfg.seed, "group": cfg.tags.get("seed_group"),
             "x": cfg.x, "opt": cfg.opt}
    loss = float("nan")
    for epoch in range(1, cfg.epochs + 1):
        time.sleep(cfg.epoch_seconds)
        loss = toy_loss(cfg.x, cfg.opt, cfg.seed, epoch)
        _append(cfg.log_file, {**ident, "epoch": epoch})
        if callback is not None:
            callback.on_epoch_end(epoch, {"loss": loss})
        if trainer.stop_reason is not None:
            break
    if cfg.opt == cfg.nan_opt:
        loss = float("nan")
    _append(cfg.log_file, {**ident, "result": loss, "stop_reason": trainer.stop_reason})
    return loss


if __name__ == "__main__":
    main()
