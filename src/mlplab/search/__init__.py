"""Hyperparameter search: the Optuna sweeper behind `hydra/sweeper=mlplab_optuna`.

Modules: `config` (the sweeper's structured config), `space` (Hydra override syntax to
Optuna distributions), `sweeper` (ask/tell over Hydra launchers, resume), `pruning` (the
job-side `PruningCallback`), `groups` (seed groups), `study` (persistent storage),
`summary` (what a finished sweep records). Nothing is imported here so that importing the
schema does not pull in optuna.
"""
