"""`mlplab reproduce`: the tutorials against their published numbers, or any logged run again.

    mlplab reproduce --tutorials                 # all four presets, one MLflow run each
    mlplab reproduce --tutorials --only skalski_moons trainer.epochs=100
    mlplab reproduce RUN_ID [OVERRIDES]          # re-run a logged run, compare final metrics

`--tutorials` trains each preset through the same app as `mlplab train experiment=NAME`
into the tracking store (default: the project's), then prints one table (tutorial, metric,
published, ours, match) and writes it as markdown to docs/reproduction.md, which the README
includes. The MNIST row is skipped, with a hint, when `<data_dir>/mnist` holds no MNIST.
Exit status: 0 when every row matches or is skipped, 1 when one does not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import open_dict

from mlplab.errors import ConfigError, DataError, choices
from mlplab.reproduce_run import LoggedRun, compose, rerun
from mlplab.reproduce_targets import TUTORIAL_NAMES, TUTORIALS, Tutorial

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


def _parser() -> argparse.ArgumentParser:
    from mlplab.cli import raise_usage_error

    parser = argparse.ArgumentParser(prog="mlplab reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--tutorials", action="store_true",
                        help="run the tutorial presets and compare with the published numbers")
    parser.add_argument("--only", action="append", metavar="PRESET",
                        help=f"with --tutorials, only these (repeatable): "
                             f"{', '.join(TUTORIAL_NAMES)}")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else the project's)")
    parser.add_argument("--output", metavar="PATH",
                        help="markdown table path (default: docs/reproduction.md for a full "
                             "--tutorials run)")
    parser.add_argument("--no-write", action="store_true", help="do not write the markdown")
    parser.add_argument("args", nargs="*", metavar="RUN_ID|OVERRIDE",
                        help="RUN_ID then overrides, or with --tutorials overrides for every "
                             "preset (key=value)")
    parser.error = raise_usage_error
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr clean
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parsed = _parser().parse_intermixed_args(list(argv or []))
    if parsed.tutorials:
        names = _selected(parsed.only)
        output = None if parsed.no_write else _output_path(parsed.output, names)
        return reproduce_tutorials(names, parsed.args, parsed.tracking_uri, output)
    if parsed.only:
        raise ConfigError("--only: only valid with --tutorials")
    if not parsed.args or "=" in parsed.args[0]:
        raise ConfigError("reproduce: give a RUN_ID (see `mlplab runs`) or --tutorials")
    return rerun(parsed.args[0], parsed.args[1:], parsed.tracking_uri)


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(TUTORIAL_NAMES)
    unknown = [n for n in only if n not in TUTORIAL_NAMES]
    if unknown:
        raise ConfigError(f"--only: unknown tutorial {unknown[0]!r}; valid choices: "
                          f"{choices(TUTORIAL_NAMES)}")
    return [n for n in TUTORIAL_NAMES if n in only]


def _output_path(explicit: str | None, names: list[str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if names != list(TUTORIAL_NAMES):
        return None  # a partial run must not overwrite the full table
    from mlplab.config import project_root

    return project_root() / "docs" / "reproduction.md"


# ----------------------------------------------------------------------------- tutorials

def mnist_missing(cfg) -> str | None:
    """Why the MNIST preset cannot run here (None if the files are there)."""
    from mlplab.data.mnist_files import locate
    from mlplab.data.paths import dataset_dir

    directory = cfg.dataset.get("directory") or dataset_dir(cfg.data_dir, "mnist")
    try:
        locate(Path(directory), "mnist", cfg.dataset.get("format", "auto"))
    except DataError:
        return str(directory)
    return None


def run_tutorial(tutorial: Tutorial, overrides: list[str], tracking_uri: str | None):
    """Train one preset through the app; returns (rows, note)."""
    from mlplab import app

    extra = [f"logger.tracking_uri={tracking_uri}"] if tracking_uri else []
    cfg = compose(f"experiment={tutorial.preset}", *overrides, *extra)
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
    app.run_job(cfg, app.JobContext(preset=tutorial.preset, overrides=list(overrides)))
    seconds = time.perf_counter() - started
    outcome = app.LAST_OUTCOME
    note = RunNote(tutorial.preset, outcome.run_id, seconds, outcome.status)
    print(f"{tutorial.preset}: {outcome.status} in {_duration(seconds)} (run {outcome.run_id})",
          flush=True)
    from mlplab.tracking.store import get_client

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
    from mlplab import __version__
    from mlplab.tracking.store import git_commit

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Tutorial reproductions", "",
             f"Generated by `mlplab reproduce --tutorials` (`make reproduce`) on {stamp}, "
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
