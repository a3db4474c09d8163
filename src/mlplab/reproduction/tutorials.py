"""The tutorials against their published numbers: train each preset through the job
layer, measure what its `Tutorial` checks, and render the table (text and markdown)."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import open_dict

from mlplab import __version__
from mlplab.config.compose import compose_job
from mlplab.data.mnist_files import locate
from mlplab.data.paths import dataset_dir
from mlplab.errors import DataError
from mlplab.job import JobContext, run_job
from mlplab.reproduction.published import TUTORIALS, Tutorial
from mlplab.reproduction.rerun import LoggedRun
from mlplab.tracking.store import get_client, git_commit

SKIPPED_NO_MNIST = "skipped: no MNIST"


@dataclass
class Row:
    tutorial: str
    metric: str
    published: str
    ours: str
    match: str  # "✓", "✗" or "skipped: ..."


@dataclass
class RunNote:
    preset: str
    run_id: str | None
    seconds: float
    status: str


def mnist_missing(cfg) -> str | None:
    """Why the MNIST preset cannot run here (None if the files are there)."""
    directory = cfg.dataset.get("directory") or dataset_dir(cfg.data_dir, "mnist")
    try:
        locate(Path(directory), "mnist", cfg.dataset.get("format", "auto"))
    except DataError:
        return str(directory)
    return None


def run_tutorial(tutorial: Tutorial, overrides: list[str], tracking_uri: str | None):
    """Train one preset through the app; returns (rows, note)."""
    extra = [f"logger.tracking_uri={tracking_uri}"] if tracking_uri else []
    cfg = compose_job(f"experiment={tutorial.preset}", *overrides, *extra)
    if tutorial.needs_mnist:
        where = mnist_missing(cfg)
        if where is not None:
            print(f"{tutorial.preset}: skipped, no MNIST in {where}; get it with "
                  "`mlplab data mnist` (or put the IDX/CSV files there)")
            rows = [Row(tutorial.preset, c.metric, c.published, "-", SKIPPED_NO_MNIST)
                    for c in tutorial.checks]
            return rows, RunNote(tutorial.preset, None, 0.0, "SKIPPED")
    with open_dict(cfg):
        cfg.tags = {**cfg.tags, "reproduction": "tutorials"}
    print(f"{tutorial.preset}: training ({tutorial.title}) ...", flush=True)
    started = time.perf_counter()
    outcome = run_job(cfg, JobContext(preset=tutorial.preset, overrides=list(overrides)))
    seconds = time.perf_counter() - started
    note = RunNote(tutorial.preset, outcome.run_id, seconds, outcome.status)
    print(f"{tutorial.preset}: {outcome.status} in {_duration(seconds)} (run {outcome.run_id})",
          flush=True)
    logged = LoggedRun(get_client(outcome.tracking_uri), outcome.run_id, cfg)
    rows = []
    for check in tutorial.checks:
        try:
            ours, ok = check.measure(logged)
        except LookupError as missing:
            ours, ok = f"not logged: {missing.args[0]}", False
        if outcome.status != "FINISHED":
            ok = False
        rows.append(Row(tutorial.preset, check.metric, check.published, ours, "✓" if ok else "✗"))
    return rows, note


def reproduce_tutorials(names: list[str], overrides: list[str], tracking_uri: str | None,
                        output: Path | None) -> int:
    rows: list[Row] = []
    notes: list[RunNote] = []
    started = time.perf_counter()
    for tutorial in TUTORIALS:
        if tutorial.preset in names:
            tutorial_rows, note = run_tutorial(tutorial, overrides, tracking_uri)
            rows += tutorial_rows
            notes.append(note)
    total = time.perf_counter() - started
    print()
    print(render_text(rows))
    print(f"\ntotal {_duration(total)}: " + ", ".join(
        f"{n.preset} {_duration(n.seconds)}" for n in notes if n.run_id))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_markdown(rows, notes, total, overrides))
        print(f"table written to {output}")
    return 0 if all(r.match != "✗" for r in rows) else 1


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


HEADER = ("tutorial", "metric", "published", "ours", "match")


def _cells(row: Row) -> tuple[str, ...]:
    return row.tutorial, row.metric, row.published, row.ours, row.match


def render_text(rows: list[Row]) -> str:
    table = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[Row], notes: list[RunNote], total: float,
                    overrides: list[str]) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Tutorial reproductions", "",
             f"Generated by `mlplab reproduce --tutorials` (`make docs-reproduction`) on {stamp}, "
             f"mlplab {__version__}, commit {git_commit()[:12]}; do not edit by hand.",
             "Setups, sources and published numbers: the header of each preset in "
             "`experiments/`.", ""]
    if overrides:
        lines += [f"Overrides applied to every preset: `{' '.join(overrides)}`.", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    own = {t.preset: t.own_code_time for t in TUTORIALS}
    lines += ["", "| preset | MLflow run | status | wall time | tutorial's own code |",
              "|---|---|---|---|---|"]
    lines += [f"| {n.preset} | {n.run_id or '-'} | {n.status} | "
              f"{_duration(n.seconds) if n.run_id else '-'} | {own[n.preset]} |" for n in notes]
    lines += ["", f"Total wall time: {_duration(total)} (including MLflow logging, plots and "
              "the pyfunc model). The last column is the tutorials' code run as published on "
              "the same 2-core machine.", ""]
    return "\n".join(lines)
