"""Hydra plugin registration for mlplab's Ray launcher (`hydra/launcher=ray`)."""
