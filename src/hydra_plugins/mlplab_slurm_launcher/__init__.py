"""Hydra plugin registration for mlplab's SLURM launcher (`hydra/launcher=submitit_slurm`)."""
