"""Seed groups: one sampled configuration, several seeds, one objective.

With `hydra.sweeper.seeds=[0,1,2]` every trial runs once per seed; each job gets
`seed=<s>` and the tag `tags.seed_group=<study>#<trial number>` so that
`mlplab runs --group-by tags.seed_group` can show mean ± std per configuration. The trial's
objective is the mean over seeds, so a lucky seed cannot win the search alone.
"""

from __future__ import annotations

import statistics
from typing import Any


def aggregate_seed_values(values: list[Any], seeds: list[int]) -> tuple[float, dict[str, Any]]:
    """Mean over seeds, plus the per-seed values and their sample std as trial attrs.

    Without seed groups there is one value and no extra attrs.
    """
    floats = [float(v) for v in values]
    mean = statistics.fmean(floats)
    if not seeds:
        return mean, {}
    std = statistics.stdev(floats) if len(floats) > 1 else 0.0
    return mean, {
        "seed_values": {str(seed): value for seed, value in zip(seeds, floats, strict=True)},
        "objective_std": std,
        "n_seeds": len(floats),
    }


def quote(text: str) -> str:
    """Single-quote a string for a Hydra override value (paths, URLs, '#').

    Inside Hydra's quoted strings a backslash escapes only a quote (or backslashes right
    before one), so escaping the quotes is all that is needed.
    """
    escaped = text.replace("'", "\\'")
    return f"'{escaped}'"


def trial_overrides(settings: dict[str, Any], number: int, study_name: str,
                    storage_url: str | None, seed: int | None = None) -> list[str]:
    """What the sweeper adds to the overrides of each job of a trial: which trial it is,
    the storage it reports to (None: it does not report), and with seed groups its seed
    and group tag (`settings` are the sweeper's, for `seed_key` and `group_key`)."""
    storage = quote(storage_url) if storage_url is not None else "null"
    overrides = [f"trial.number={number}", f"trial.study_name={quote(study_name)}",
                 f"trial.storage={storage}"]
    if seed is not None:
        group_id = f"{study_name}#{number}"
        overrides += [f"{settings['seed_key']}={seed}",
                      f"++{settings['group_key']}={quote(group_id)}"]
    return overrides
