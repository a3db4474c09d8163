"""Independent re-implementations of the three tutorials, written from their math.

Each module exposes `run(epochs, ...) -> dict` with a per-epoch `history` shaped like
`mlplab.training.TrainResult.history` ({metric: [(epoch, value), ...]}) and the final
parameters as `params` ({"W1": ..., "b1": ..., ...}). They share no code with mlplab, so
an agreement to 1e-10 between an oracle and mlplab is evidence that both do the same
arithmetic, not that one copied the other.
"""
