"""The training loop: batches, evaluation, early stopping, checkpoints and callbacks.

It knows nothing of MLflow: it emits events (`Callback`) that loggers and pruners consume.
"""

from mlplab.training.callbacks import Callback, EarlyStopping
from mlplab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mlplab.training.result import STATUSES, TrainResult
from mlplab.training.trainer import Trainer, resolve_log_every

__all__ = ["STATUSES", "Callback", "Checkpoint", "EarlyStopping", "TrainResult", "Trainer",
           "load_checkpoint", "resolve_log_every", "save_checkpoint"]
