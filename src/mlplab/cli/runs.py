"""`mlplab runs`: the logged runs as one table, optionally grouped (mean ± std over seeds).

    mlplab runs --experiment quick_moons --sort test_loss
    mlplab runs --filter 'params.optimizer.lr=0.1' --group-by optimizer.lr --markdown

Sweep parent runs are left out (their children are the runs); `--filter` takes MLflow's
search syntax, and also the short form `params.optimizer.lr=0.1` (dotted names quoted for
MLflow automatically). Columns: the params that differ between the runs shown (or
`--params`), then every metric's last value.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import statistics
import sys

from mlplab.cli._common import raise_usage_error
from mlplab.errors import ConfigError, choices

# Params that say where a run was logged rather than what it trained.
_BORING_PARAMS = re.compile(r"^(run_name|experiment_name|data_dir|logger\..*|trial\..*|tags"
                            r"|trainer\.(progress|blas_threads|resume))$")
_SHORT_CONDITION = re.compile(
    r"^\s*(?:(params|metrics|tags|attributes)\.)?([\w.\-/]+)\s*(<=|>=|!=|=|<|>)\s*(.+?)\s*$")
MAX_AUTO_PARAMS = 8


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplab runs", description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", action="append", metavar="NAME",
                        help="experiment name (repeatable; default: every experiment)")
    parser.add_argument("--filter", action="append", default=[], metavar="EXPR",
                        help="MLflow filter, or KEY=VALUE such as params.optimizer.lr=0.1")
    parser.add_argument("--sort", metavar="METRIC",
                        help="sort by this metric (or param); --sort=-METRIC for descending")
    parser.add_argument("--group-by", nargs="+", default=[], metavar="PARAM",
                        help="one row per value of these params: mean ± std of each metric")
    parser.add_argument("--params", metavar="P1,P2", help="param columns to show")
    parser.add_argument("--status", default=None, help="only runs with this status")
    parser.add_argument("--limit", type=int, default=10000, help="at most this many runs")
    parser.add_argument("--tracking-uri", default=None, help="the MLflow store to read")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="CSV on stdout")
    output.add_argument("--markdown", action="store_true", help="a Markdown table")
    return parser


def mlflow_filter(expressions: list[str]) -> str:
    """Join filters with AND; `params.a.b=0.1` becomes MLflow's params.`a.b` = '0.1'."""
    parts = []
    for expression in expressions:
        for condition in re.split(r"\s+and\s+", expression, flags=re.IGNORECASE):
            found = _SHORT_CONDITION.match(condition)
            if not found or any(q in condition for q in "`\"'"):
                parts.append(condition)  # already MLflow syntax
                continue
            kind, key, op, value = found.groups()
            kind = kind or "params"
            if kind == "metrics":
                parts.append(f"metrics.`{key}` {op} {value}")
            else:
                parts.append(f"{kind}.`{key}` {op} '{value}'")
    return " and ".join(parts)


def _search(client, experiment_ids, filter_string, limit) -> list:
    runs, token = [], None
    while len(runs) < limit:
        page = client.search_runs(experiment_ids, filter_string=filter_string,
                                  max_results=min(1000, limit - len(runs)), page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def _experiments(client, names: list[str] | None) -> dict[str, str]:
    """{experiment_id: name} of the named experiments (all when no names)."""
    if not names:
        return {e.experiment_id: e.name for e in client.search_experiments()}
    found = {}
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            known = [e.name for e in client.search_experiments()]
            raise ConfigError(f"--experiment: no experiment {name!r} in the store; valid "
                              f"choices: {choices(known) or '(none yet)'}")
        found[experiment.experiment_id] = name
    return found


def _param_columns(runs, requested: str | None, group_by: list[str]) -> list[str]:
    if requested:
        return [p.strip() for p in requested.split(",") if p.strip()]
    keys = sorted({k for r in runs for k in r.data.params if not _BORING_PARAMS.match(k)})
    varying = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    return [k for k in varying if k not in group_by][:MAX_AUTO_PARAMS]


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def run_rows(runs, experiments, params, metrics) -> tuple[list[str], list[list]]:
    header = ["run_id", "experiment", "run_name", "status", *params, *metrics]
    rows = [[r.info.run_id[:8], experiments.get(r.info.experiment_id, ""), r.info.run_name or "",
             r.info.status, *(r.data.params.get(p, "") for p in params),
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


def _sort(header, rows, key: str | None) -> None:
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


def render(header, rows, *, fmt: str, grouped: bool) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return out.getvalue()
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


def runs_main(argv: list[str]) -> int:
    from mlplab.tracking.store import get_client

    parser = _parser()
    parser.error = raise_usage_error
    args = parser.parse_args(argv)
    client = get_client(args.tracking_uri)
    experiments = _experiments(client, args.experiment)
    filters = list(args.filter)
    if args.status:
        filters.append(f"attributes.status = '{args.status.upper()}'")
    runs = _search(client, list(experiments), mlflow_filter(filters) or None, args.limit)
    runs = [r for r in runs if r.data.tags.get("mlplab.role") != "sweep"]
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_name or ""))  # as they ran
    group_by = [g.removeprefix("params.") for g in args.group_by]
    metrics = sorted({k for r in runs for k in r.data.metrics})
    if group_by:
        header, rows = grouped_rows(runs, group_by, metrics)
    else:
        params = _param_columns(runs, args.params, group_by)
        header, rows = run_rows(runs, experiments, params, metrics)
    _sort(header, rows, args.sort)
    fmt = "csv" if args.csv else "markdown" if args.markdown else "text"
    if not runs and fmt == "text":
        print("no runs found", file=sys.stderr)
        return 0
    sys.stdout.write(render(header, rows, fmt=fmt, grouped=bool(group_by)))
    return 0
