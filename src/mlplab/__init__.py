"""mlplab: small neural networks in NumPy, composed by Hydra, tracked in MLflow."""

__version__ = "0.1.0"
