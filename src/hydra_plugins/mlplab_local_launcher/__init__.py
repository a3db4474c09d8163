"""Hydra plugin registration for mlplab's `hydra/launcher=local_parallel`."""
