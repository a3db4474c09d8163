"""`mlplab reproduce`: the tutorials against their published numbers, or any logged run again.

    mlplab reproduce --tutorials                 # all four presets, one MLflow run each
    mlplab reproduce --tutorials --only skalski_moons trainer.epochs=100
    mlplab reproduce RUN_ID [OVERRIDES]          # re-run a logged run, compare final metrics

`--tutorials` trains each preset through the same job layer as `mlplab train
experiment=NAME` into the tracking store (default: the project's), then prints one table
(tutorial, metric, published, ours, match) and writes it as markdown to
outputs/reproduction.md (git-ignored, so the checkout stays clean; `make docs-reproduction`
writes the tracked docs/reproduction.md, which the README copies). The MNIST row is skipped,
with a hint, when `<data_dir>/mnist` holds no MNIST.
Exit status: 0 when every row matches or is skipped, 1 when one does not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from mlplab.cli._common import raise_usage_error
from mlplab.config.paths import project_root
from mlplab.errors import ConfigError, choices
from mlplab.reproduction.published import TUTORIAL_NAMES
from mlplab.reproduction.rerun import rerun
from mlplab.reproduction.tutorials import reproduce_tutorials


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplab reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--tutorials", action="store_true",
                        help="run the tutorial presets and compare with the published numbers")
    parser.add_argument("--only", action="append", metavar="PRESET",
                        help=f"with --tutorials, only these (repeatable): "
                             f"{', '.join(TUTORIAL_NAMES)}")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else the project's)")
    parser.add_argument("--output", metavar="PATH",
                        help="markdown table path (default: outputs/reproduction.md for a full "
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
    return project_root() / "outputs" / "reproduction.md"
