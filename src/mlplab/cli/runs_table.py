"""The tables `mlplab runs` prints: one row per run, per group of runs, or per differing key.

Rows are lists of plain values under a header; `sort_rows` orders them by one column
(numbers first, NaN and blanks last), and `render` writes them as an aligned table, CSV,
JSON (one object per row, numbers as numbers) or Markdown.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics

from mlplab.errors import ConfigError, choices
from mlplab.tracking.params import is_bookkeeping, varying_params

MAX_AUTO_PARAMS = 8
FORMATS = ("table", "csv", "json", "markdown")


def is_pruned(run) -> bool:
    return run.data.tags.get("pruned") == "true"


def status_of(run) -> str:
    """The run's status, saying so when a pruner stopped it early."""
    return f"{run.info.status} (pruned)" if is_pruned(run) else run.info.status


def param_columns(runs, requested: str | None, group_by: list[str]) -> list[str]:
    """`--params` (checked against the runs' params), else the params that differ between
    the runs shown, at most `MAX_AUTO_PARAMS`."""
    if requested:
        wanted = [p.strip().removeprefix("params.") for p in requested.split(",") if p.strip()]
        check_params("--params", wanted, runs)
        return wanted
    varying = varying_params([r.data.params for r in runs])
    return [k for k in varying if k not in group_by][:MAX_AUTO_PARAMS]


def check_params(option: str, keys: list[str], runs) -> None:
    """A one-line ConfigError for a key no run has as a param (valid: those they have)."""
    logged = {k for r in runs for k in r.data.params}
    unknown = [k for k in keys if k not in logged]
    if runs and unknown:
        shown = sorted(k for k in logged if not is_bookkeeping(k))
        raise ConfigError(f"{option}: no param {unknown[0]!r} in these runs; valid choices: "
                          f"{choices(shown)}")


def run_rows(runs, experiments, params, metrics) -> tuple[list[str], list[list]]:
    header = ["run_id", "experiment", "run_name", "status", *params, *metrics]
    rows = [[r.info.run_id[:8], experiments.get(r.info.experiment_id, ""), r.info.run_name or "",
             status_of(r), *(r.data.params.get(p, "") for p in params),
             *(r.data.metrics.get(m) for m in metrics)] for r in runs]
    return header, rows


def grouped_rows(runs, group_by, metrics) -> tuple[list[str], list[list]]:
    """One row per distinct value of the group-by params: n and mean ± std per metric
    (sample standard deviation; 0 for a group of one)."""
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault(tuple(run.data.params.get(p, "") for p in group_by), []).append(run)
    header = [*group_by, "n"] + [m for metric in metrics for m in (metric, f"{metric}_std")]
    rows = []
    for key, members in groups.items():
        row = [*key, len(members)]
        for metric in metrics:
            values = [r.data.metrics[metric] for r in members
                      if metric in r.data.metrics and math.isfinite(r.data.metrics[metric])]
            row += ([statistics.fmean(values), statistics.stdev(values) if len(values) > 1
                     else 0.0] if values else [None, None])
        rows.append(row)
    return header, rows


def sort_rows(header, rows, key: str | None) -> None:
    """Order `rows` by column `key` (`-key`: descending); numbers first, then the rest."""
    if not key:
        return
    descending = key.startswith("-")
    key = key.lstrip("-")
    if key not in header:
        raise ConfigError(f"--sort: no column {key!r}; valid choices: {choices(header)}")
    column = header.index(key)

    def order(row):
        value = row[column]
        try:
            number = float(value)
        except (TypeError, ValueError):
            return (1, 0.0, str(value))
        return (0 if math.isfinite(number) else 1, -number if descending else number, "")

    rows.sort(key=order)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render(header, rows, *, fmt: str, grouped: bool = False) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return out.getvalue()
    if fmt == "json":
        return json.dumps([{h: _json_value(v) for h, v in zip(header, row, strict=True)}
                           for row in rows], indent=1) + "\n"
    shown_header, shown = header, [[_number(v) for v in row] for row in rows]
    if grouped:  # fold the *_std columns into "mean ± std"
        keep = [i for i, h in enumerate(header) if not h.endswith("_std")]
        shown_header = [header[i] for i in keep]
        shown = [[cells[i] + (f" ± {cells[i + 1]}" if i + 1 < len(header) and header[i + 1]
                              .endswith("_std") and cells[i] else "") for i in keep]
                 for cells in shown]
    if fmt == "markdown":
        lines = ["| " + " | ".join(shown_header) + " |",
                 "|" + "|".join("---" for _ in shown_header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in shown]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(c)) for c in column) for column in zip(shown_header, *shown,
                                                                  strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [shown_header, *shown]]
    return "\n".join(lines) + "\n"


def diff_rows(config_a: dict[str, str], config_b: dict[str, str], metrics_a: dict,
              metrics_b: dict) -> list[list]:
    """[kind, key, value in A, value in B] for each config key and final metric that
    differs (a key only one run has counts as differing; its other value is blank)."""
    rows = [["config", key, config_a.get(key, ""), config_b.get(key, "")]
            for key in sorted(set(config_a) | set(config_b))
            if config_a.get(key) != config_b.get(key)]
    rows += [["metric", key, metrics_a.get(key), metrics_b.get(key)]
             for key in sorted(set(metrics_a) | set(metrics_b))
             if metrics_a.get(key) != metrics_b.get(key)]
    return rows
