"""`mlplab runs`: the logged runs as one table, optionally grouped (mean ± std over seeds).

    mlplab runs --experiment quick_moons --sort test_loss --limit 5
    mlplab runs --sweep latest --group-by optimizer.lr
    mlplab runs --filter 'params.optimizer.lr=0.1' --format csv
    mlplab runs --diff RUN_A RUN_B

Sweep parent runs are left out (their children are the runs); `--sweep latest|PARENT_ID`
keeps one sweep's children. Rows are sorted (`--sort`), then cut to `--limit`. Grouped rows
(`--group-by`) average the runs that completed: pruned and unfinished runs are left out
unless `--include-pruned`, and `n` says how many runs each row holds. `--filter` takes
MLflow's search syntax, and also the short form `params.optimizer.lr=0.1` (dotted names
quoted for MLflow automatically). Columns: the params that differ between the runs shown
(or `--params`), then every metric's last value. `--diff` prints the config keys (from each
run's `config.yaml`) and final metrics that differ between two runs (ids or unique
prefixes, as the table shows them).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import yaml

from mlplab.cli._common import raise_usage_error
from mlplab.cli.runs_table import (
    FORMATS,
    check_params,
    diff_rows,
    grouped_rows,
    is_pruned,
    param_columns,
    render,
    run_rows,
    sort_rows,
)
from mlplab.errors import ConfigError, choices
from mlplab.tracking.params import flatten_params
from mlplab.tracking.stale import STALE_FILTER
from mlplab.tracking.store import default_tracking_uri, get_client, resolve_tracking_uri

_SHORT_CONDITION = re.compile(
    r"^\s*(?:(params|metrics|tags|attributes)\.)?([\w.\-/]+)\s*(<=|>=|!=|=|<|>)\s*(.+?)\s*$")
STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
SWEEP_ROLE_FILTER = "tags.`mlplab.role` = 'sweep'"
PAGE = 1000  # runs per search request (MLflow's own page size)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplab runs", description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", action="append", metavar="NAME",
                        help="experiment name (repeatable; default: every experiment)")
    parser.add_argument("--sweep", metavar="latest|PARENT_ID",
                        help="only the children of this sweep (latest: the newest sweep)")
    parser.add_argument("--filter", action="append", default=[], metavar="EXPR",
                        help="MLflow filter, or KEY=VALUE such as params.optimizer.lr=0.1")
    parser.add_argument("--sort", metavar="COLUMN",
                        help="sort by this metric (or param); --sort=-METRIC for descending")
    parser.add_argument("--group-by", nargs="+", default=[], metavar="PARAM",
                        help="one row per value of these params: mean ± std of each metric")
    parser.add_argument("--include-pruned", action="store_true",
                        help="with --group-by, also average pruned and unfinished runs")
    parser.add_argument("--params", metavar="P1,P2", help="param columns to show")
    parser.add_argument("--status", default=None, metavar="STATUS",
                        help=f"only runs with this status ({', '.join(STATUSES)})")
    parser.add_argument("--limit", type=int, default=None, help="at most this many rows")
    parser.add_argument("--stale", action="store_true",
                        help="only runs closed because their process was gone (see "
                             "docs/reliability.md)")
    parser.add_argument("--diff", nargs=2, metavar=("RUN_A", "RUN_B"),
                        help="the config keys and final metrics that differ between two runs")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="table (default), csv, json or markdown")
    parser.add_argument("--tracking-uri", default=None, help="the MLflow store to read")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="same as --format csv")
    output.add_argument("--markdown", action="store_true", help="same as --format markdown")
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


def open_store(value: str | None):
    """A client of an existing store, or a one-line ConfigError; never creates one (nor
    its directory: the check comes before `get_client`, which makes both)."""
    uri = resolve_tracking_uri(value)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"--tracking-uri: no MLflow store at {uri.removeprefix('sqlite:///')}"
                          f"; valid choices: an existing store (a path ending in .db, "
                          f"sqlite:///PATH or an MLflow server's http(s):// URL), by default "
                          f"{default_tracking_uri().removeprefix('sqlite:///')} once a run "
                          "has been logged")
    return get_client(uri)  # which checks the store (one request to a server) first


def search(client, experiment_ids, filter_string) -> list:
    """Every run matching the filter (all pages); a filter MLflow cannot parse is a
    one-line ConfigError."""
    # Imported here for start-up speed: bad options are reported before MLflow loads.
    from mlflow.exceptions import MlflowException

    runs, token = [], None
    while True:
        try:
            page = client.search_runs(experiment_ids, filter_string=filter_string,
                                      max_results=PAGE, page_token=token)
        except MlflowException as error:
            if error.error_code != "INVALID_PARAMETER_VALUE":
                raise
            reason = str(error.message).splitlines()[0]
            raise ConfigError(f"--filter: {reason}; valid choices: MLflow's search syntax "
                              "(metrics.test_loss < 0.5 and params.`optimizer.lr` = '0.1') "
                              "or KEY=VALUE conditions joined by 'and'") from None
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _experiments(client, names: list[str] | None) -> dict[str, str]:
    """{experiment_id: name} of the named experiments (all when no names)."""
    known = {e.experiment_id: e.name for e in client.search_experiments()}
    if not names:
        return known
    found = {}
    for name in names:
        ids = [i for i, n in known.items() if n == name]
        if not ids:
            raise ConfigError(f"--experiment: no experiment {name!r} in the store; valid "
                              f"choices: {choices(known.values()) or '(none yet)'}")
        found[ids[0]] = name
    return found


def find_sweep(client, experiment_ids, wanted: str):
    """The parent run `--sweep` names: the newest sweep for `latest`, else the one whose
    id is (or starts with) `wanted`."""
    parents = search(client, experiment_ids, SWEEP_ROLE_FILTER)
    parents.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    if wanted == "latest":
        matches = parents[:1]
    else:
        matches = [r for r in parents if r.info.run_id.startswith(wanted)]
    if len(matches) != 1:
        shown = [r.info.run_id[:8] for r in parents[:5]]
        what = "no sweep" if not matches else f"{len(matches)} sweeps"
        raise ConfigError(f"--sweep: {what} matches {wanted!r}; valid choices: latest, or a "
                          f"sweep's parent run id ({choices(shown) or 'no sweep logged yet'})")
    return matches[0]


def find_run(client, experiment_ids, wanted: str, option: str = "--diff"):
    """The run with id `wanted`, or the only one whose id starts with it."""
    from mlflow.exceptions import MlflowException  # start-up speed, as in `search`

    try:
        return client.get_run(wanted)
    except MlflowException:
        pass
    matches = [r for r in search(client, experiment_ids, None)
               if r.info.run_id.startswith(wanted)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise ConfigError(f"{option}: {what} with an id starting {wanted!r}; valid choices: "
                          "the run ids (or unique prefixes) `mlplab runs` lists")
    return matches[0]


def run_config(client, run) -> dict[str, str]:
    """The run's logged config.yaml, flattened; its params when it has none."""
    try:
        with tempfile.TemporaryDirectory(prefix="mlplab-diff-") as scratch:
            path = client.download_artifacts(run.info.run_id, "config.yaml", scratch)
            config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 -- no artifact, or not YAML: the params are the config
        return dict(run.data.params)
    return flatten_params(config) if isinstance(config, dict) else dict(run.data.params)


def _diff(client, experiments, wanted, fmt: str) -> int:
    run_a, run_b = (find_run(client, list(experiments), w) for w in wanted)
    rows = diff_rows(run_config(client, run_a), run_config(client, run_b),
                     dict(run_a.data.metrics), dict(run_b.data.metrics))
    header = ["kind", "key", run_a.info.run_id[:8], run_b.info.run_id[:8]]
    if fmt == "table":
        print(f"{header[2]} = {run_a.info.run_name}\n{header[3]} = {run_b.info.run_name}")
        if not rows:
            print("no config key or final metric differs")
            return 0
    sys.stdout.write(render(header, rows, fmt=fmt))
    return 0


def runs_main(argv: list[str]) -> int:
    parser = _parser()
    parser.error = raise_usage_error
    args = parser.parse_args(argv)
    fmt = "csv" if args.csv else "markdown" if args.markdown else args.format or "table"
    status = args.status.upper() if args.status else None
    if status is not None and status not in STATUSES:
        raise ConfigError(f"--status: unknown status {args.status!r}; valid choices: "
                          f"{choices(STATUSES)}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: expected a positive integer, got {args.limit}")
    client = open_store(args.tracking_uri)
    experiments = _experiments(client, args.experiment)
    if args.diff:
        return _diff(client, experiments, args.diff, fmt)
    filters = list(args.filter) + ([STALE_FILTER] if args.stale else [])
    if status:
        filters.append(f"attributes.status = '{status}'")
    if args.sweep:
        parent = find_sweep(client, list(experiments), args.sweep)
        filters.append(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        experiments = {parent.info.experiment_id: experiments[parent.info.experiment_id]}
    runs = search(client, list(experiments), mlflow_filter(filters) or None)
    runs = [r for r in runs if r.data.tags.get("mlplab.role") != "sweep"]
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_name or ""))  # as they ran
    group_by = [g.removeprefix("params.") for g in args.group_by]
    if group_by:
        check_params("--group-by", group_by, runs)
        if not args.include_pruned:  # stopped early or not at all: not comparable
            runs = [r for r in runs if r.info.status == "FINISHED" and not is_pruned(r)]
    metrics = sorted({k for r in runs for k in r.data.metrics})
    if group_by:
        header, rows = grouped_rows(runs, group_by, metrics)
    else:
        header, rows = run_rows(runs, experiments, param_columns(runs, args.params, group_by),
                                metrics)
    sort_rows(header, rows, args.sort)
    rows = rows[:args.limit]
    if not runs and fmt == "table":
        print("no runs found", file=sys.stderr)
        return 0
    sys.stdout.write(render(header, rows, fmt=fmt, grouped=bool(group_by)))
    return 0
