"""Datasets for mlplab: synthetic, scikit-learn and MNIST, split and scaled.

    from mlplab.data import load_dataset
    ds = load_dataset("moons", data_dir=None, seed=0, dtype="float64", noise=0.3)

Arrays are sample-major, (n_samples, n_features); see `Dataset`.
"""

from mlplab.data.dataset import TASKS, Dataset
from mlplab.data.paths import default_data_dir
from mlplab.data.registry import DATASETS, NULLABLE_KEYS, dataset_defaults, load_dataset
from mlplab.data.scalers import (
    MaxScaler,
    MinMaxScaler,
    Scaler,
    Standardizer,
    scaler_from_state,
)

__all__ = ["DATASETS", "NULLABLE_KEYS", "TASKS", "Dataset", "MaxScaler", "MinMaxScaler", "Scaler",
           "Standardizer", "dataset_defaults", "default_data_dir", "load_dataset",
           "scaler_from_state"]
