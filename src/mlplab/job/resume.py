"""`trainer.resume=RUN_ID`: which run to continue, from which checkpoint, and which changes
of the command line a resumed run can honour.

A resumed run continues the weights, optimizer state, sample order and RNG state of its
newest checkpoint. What the config set up before training (the data, the model's shape
and dtype, the optimizer and schedule, the initial weights) is in that state already, so a
resume that changes any of it would silently train something else, or crash halfway and
turn a resumable KILLED run FAILED. It is refused instead, before the run is re-opened
(its status stays as it was), with one line naming the first such key. What the training
loop reads afresh from the checkpoint's epoch on (`HONOURED`) may change; the run's tag
`resume_changed_params` records it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlplab.errors import ConfigError, DataError
from mlplab.tracking.run import run_to_resume
from mlplab.tracking.store import get_client

# Keys a resumed run honours: how long it trains and how it evaluates, checkpoints and
# stops from the checkpoint's epoch on, the batch size (batches are cut from the restored
# sample order each epoch), and bookkeeping (the run it resumes, the Optuna trial).
HONOURED = re.compile(
    r"^trainer\.(epochs|resume|log_every|checkpoint_every|train_metrics|extra_metrics"
    r"|batch_size|early_stopping\.\w+)$|^trial\.")

# Why a key cannot change, by what it sets up (first match wins); reported in its line.
_WHY = (
    (re.compile(r"^(dataset\.|seed$)"), "the data would not be those the run trained on"),
    (re.compile(r"^(architecture\.|trainer\.dtype$)"),
     "the model would not be the one in the checkpoint"),
    (re.compile(r""), "the checkpoint restores the state it set up"),
)


def _order(key: str) -> tuple:
    """Data first, then the model, then the rest; `.name` before the other keys of a
    group (a changed dataset is named, not its first differing option)."""
    family = next(i for i, (pattern, _) in enumerate(_WHY) if pattern.match(key))
    return family, not key.endswith(".name"), key


def refuse_changes(run_id: str, logged: dict[str, str], params: dict[str, str]) -> None:
    """Raise a one-line ConfigError for the first key whose value in `params` (this
    command line's) differs from `logged` (the run's params) and that resume cannot
    honour."""
    missing = "(not set)"
    changed = sorted((key for key in set(logged) | set(params)
                      if not HONOURED.match(key)
                      and logged.get(key, missing) != params.get(key, missing)), key=_order)
    if not changed:
        return
    key = changed[0]
    before, now = logged.get(key, missing), params.get(key, missing)
    why = next(reason for pattern, reason in _WHY if pattern.match(key))
    more = f" ({len(changed) - 1} more keys differ)" if len(changed) > 1 else ""
    raise ConfigError(f"{key}: run {run_id} was trained with {before}, not {now}; "
                      f"trainer.resume cannot change it ({why}){more}; valid choices: "
                      f"{key}={before}, or a new run without trainer.resume")


def checkpoint_to_resume(cfg, params: dict[str, str], directory: str) -> Path:
    """Download the newest `checkpoints/*.npz` of the run named by `trainer.resume`, after
    checking that this command line (`params`, as the run would log them) can continue it;
    nothing is written to the run before that."""
    run_id = cfg.trainer.resume
    client = get_client(cfg.logger.tracking_uri)
    run = run_to_resume(client, run_id, client.tracking_uri)
    names = sorted(a.path for a in client.list_artifacts(run_id, "checkpoints")
                   if a.path.endswith(".npz"))
    if not names:
        stopped = run.data.tags.get("stop_reason")
        if stopped:  # closed KILLED before it wrote any checkpoint
            raise DataError(f"trainer.resume: run {run_id} has nothing to resume from "
                            f"({stopped}); valid choices: a new run without trainer.resume")
        raise DataError(f"trainer.resume: run {run_id} has no checkpoints/*.npz artifact to "
                        "resume from; valid choices: a run logged with trainer.checkpoint_every "
                        "set, or one that was killed")
    refuse_changes(run_id, run.data.params, params)
    # Into <run id>/checkpoints/, so that an error about the file names the run and artifact.
    target = Path(directory) / run_id / "checkpoints"
    target.mkdir(parents=True)
    return Path(client.download_artifacts(run_id, names[-1], str(target)))
