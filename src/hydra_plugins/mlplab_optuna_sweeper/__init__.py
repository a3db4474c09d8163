"""Hydra plugin registration for mlplab's Optuna sweeper (`hydra/sweeper=mlplab_optuna`)."""
