"""The NumPy engine: activations, losses, initializers, layers (dense, normalization,
dropout), the MLP, optimizers and learning-rate schedules. It knows nothing of Hydra or
MLflow (see docs/architecture.md)."""

from mlplab.nn.activations import ACTIVATIONS, Activation, get_activation
from mlplab.nn.clipping import clip_grad_norm, clip_grad_value, global_norm
from mlplab.nn.dropout import Dropout
from mlplab.nn.initializers import INITIALIZERS, Initializer, get_initializer, init_params
from mlplab.nn.layers import Dense
from mlplab.nn.losses import LOSSES, Loss, get_loss
from mlplab.nn.metrics import accuracy, edenau_loss
from mlplab.nn.model import MLP
from mlplab.nn.normalization import BatchNorm, LayerNorm
from mlplab.nn.optimizers import OPTIMIZERS, Optimizer, get_optimizer
from mlplab.nn.schedules import SCHEDULES, Schedule, get_schedule
from mlplab.nn.threads import blas_threads, set_blas_threads

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "LOSSES", "OPTIMIZERS", "SCHEDULES", "MLP", "Activation",
    "BatchNorm", "Dense", "Dropout", "LayerNorm", "Initializer", "Loss", "Optimizer",
    "Schedule", "accuracy", "blas_threads",
    "clip_grad_norm", "clip_grad_value", "edenau_loss", "get_activation", "get_initializer",
    "get_loss", "get_optimizer", "get_schedule", "global_norm", "init_params",
    "set_blas_threads",
]
