"""Checkpoints: everything a resumed fit needs to continue exactly where it stopped.

One `.npz` file, loadable with `np.load(path, allow_pickle=False)`: the model's arrays
under `model/<name>` (whatever its `state_dict` holds), the optimizer's under
`optimizer/<key>` (scalars as 0-d arrays), the epoch order of the samples (`order`, when
shuffled mini-batches compose it), the best weights kept for early stopping
(`best/<name>`), and a JSON document in the 0-d string array `meta` for the rest: the epoch,
the shuffling RNG's state (a Generator's bit-generator state, or the legacy global
stream's), schedule and early-stopping state, the last evaluation's metrics and its epoch.

Its size is O(parameters + optimizer state), whatever the epoch: the metric history is
not in it (the run's tracking store has it; a resumed fit is given it back, see
`Trainer.fit`), so a long run's checkpoints do not grow with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlplab.errors import DataError

FORMAT = "mlplab-checkpoint-1"


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:06d}.npz"


@dataclass
class Checkpoint:
    epoch: int
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # "order", "best/W1", ...


def rng_state(rng) -> dict:
    """JSON-ready state of a Generator, or of the global legacy stream when rng is None."""
    if rng is None:
        state = np.random.get_state(legacy=False)  # noqa: NPY002 (legacy stream on purpose)
        state["state"] = {"key": state["state"]["key"].tolist(), "pos": state["state"]["pos"]}
        return {"legacy": True, "state": state}
    return {"legacy": False, "state": rng.bit_generator.state}


def set_rng_state(rng, saved: dict) -> None:
    state = saved["state"]
    if saved["legacy"]:
        state = dict(state, state={"key": np.asarray(state["state"]["key"], dtype=np.uint32),
                                   "pos": state["state"]["pos"]})
        np.random.set_state(state)  # noqa: NPY002
    else:
        rng.bit_generator.state = state


def save_checkpoint(path, checkpoint: Checkpoint) -> Path:
    """Write atomically (a killed process never leaves half a checkpoint behind)."""
    path = Path(path)
    arrays = {f"model/{k}": np.asarray(v) for k, v in checkpoint.model.items()}
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in checkpoint.optimizer.items()})
    arrays.update({k: np.asarray(v) for k, v in checkpoint.arrays.items()})
    meta = dict(checkpoint.meta, format=FORMAT, epoch=checkpoint.epoch)
    arrays["meta"] = np.array(json.dumps(meta))
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(partial, path)
    return path


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable checkpoint ({error})") from error
    if "meta" not in arrays:
        raise DataError(f"{path}: not an mlplab checkpoint (no 'meta' entry)")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: unsupported checkpoint format {meta.get('format')!r}; "
                        f"valid choices: {FORMAT}")

    def section(prefix: str) -> dict:
        return {k[len(prefix):]: arrays.pop(k) for k in list(arrays) if k.startswith(prefix)}

    model, optimizer = section("model/"), section("optimizer/")
    return Checkpoint(int(meta["epoch"]), model, optimizer, meta, arrays)
