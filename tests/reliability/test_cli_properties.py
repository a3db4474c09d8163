"""The bad-input promise as a property: command lines drawn from the config schema.

Every leaf key of the composed default config gets valid and invalid values of its
type, every config group its options and a name that is none of them, and some lines are
sweeps (comma lists, range, choice, interval) with or without `-m`. Whatever is drawn,
`mlplab train` must exit 0 or 2: on 2 with one `mlplab: error:` line on stderr, no
traceback and no run in the store; on 0 with every run it made FINISHED.

The in-process entry (`mlplab.cli.dispatch.main`) is what the console script calls, so an
example costs a compose and at most a tiny run, not a Python start-up. A short budget runs
in the default suite, a longer one under `slow`.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from reliability_helpers import store_runs

from mlplab.cli.dispatch import main
from mlplab.config.compose import compose_config, hydra_on_conf
from mlplab.config.paths import conf_dir

# Keys the test sets itself (where the run writes, how long it trains), and keys that
# are not the user's to type (set by the Optuna sweeper for each trial).
FIXED = ("data_dir", "logger.tracking_uri", "logger.log_model", "logger.plots",
         "trainer.resume", "trainer.progress", "trial.")
GROUPS = ("dataset", "optimizer", "initializer", "schedule", "architecture", "logger",
          "experiment")


def _leaves(node, prefix=""):
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _values(default) -> list[str]:
    """Values of a key's type, valid or not, as they would be typed."""
    if isinstance(default, bool):
        return ["true", "false", "maybe"]
    if isinstance(default, int):
        return [str(default), "0", "1", "-1", "2", "ten", "1.5"]
    if isinstance(default, float):
        return [str(default), "0", "0.5", "-1", "nan", "inf", "fast"]
    if isinstance(default, list):
        return ["[]", "[4]", "[0]", "[4,x]", "4"]
    if isinstance(default, dict):
        return ["{}", "3"]
    if default is None:
        return ["null", "1", "nope", "0.5"]
    return [str(default), "nope", "''"]


def _schema():
    """{key: typed values} of the default config's leaves, {group: its options}."""
    with hydra_on_conf():
        cfg = compose_config([])
    plain = OmegaConf.to_container(cfg, resolve=False)
    keys = {key: _values(value) for key, value in _leaves(plain)
            if not key.startswith(FIXED) and not str(value).startswith("${")}
    groups = {group: sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))
              for group in GROUPS if (conf_dir() / group).is_dir()}
    return keys, groups


KEYS, OPTIONS = _schema()
# One sweep per kind of Hydra's sweep syntax, on keys that keep the jobs tiny.
SWEEPS = ["seed=0,1", "seed=range(0,2)", "seed=range(3,1)", "seed=range(0,2,0)",
          "optimizer=choice(sgd,adam)", "optimizer=choice()", "optimizer.lr=interval(0.01,0.1)",
          "optimizer.lr=interval(1,0)", "trainer.epochs=1,x"]


@st.composite
def command_lines(draw):
    """(multirun, overrides): a few keys and groups with drawn values, maybe a sweep."""
    overrides = []
    for group in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=2, unique=True)):
        overrides.append(f"{group}={draw(st.sampled_from([*OPTIONS[group], 'nope']))}")
    for key in draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=3, unique=True)):
        overrides.append(f"{key}={draw(st.sampled_from(KEYS[key]))}")
    multirun = draw(st.booleans()) and draw(st.booleans())  # one line in four sweeps
    if draw(st.booleans()):
        overrides.append(draw(st.sampled_from(SWEEPS)))
    return multirun, overrides


def _run(multirun: bool, overrides: list[str], migrated: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="mlplab-property-") as scratch:
        tmp = Path(scratch)
        store = tmp / "mlflow.db"
        shutil.copy(migrated, store)
        # Tiny jobs, whatever was drawn: these come after the drawn overrides and win
        # (the trainer's epochs and data size), except where a drawn key is the point.
        args = ["train", *(["-m"] if multirun else []), *overrides,
                f"logger.tracking_uri=sqlite:///{store}", f"data_dir={tmp}",
                "logger.log_model=false", "logger.plots=false",
                f"hydra.run.dir={tmp}/run", f"hydra.sweep.dir={tmp}/sweep"]
        if not any(o.startswith("trainer.epochs=") for o in overrides):
            args.append("trainer.epochs=2")
        if not any(o.startswith("dataset.n_samples=") for o in overrides):
            args.append("dataset.n_samples=60")
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            status = main(args)
        text = stderr.getvalue()
        event(f"status {status}")
        assert status in (0, 2), f"status {status} for {args}:\n{text}"
        assert "Traceback" not in text, text
        runs = store_runs(store)
        if status == 2:
            lines = [line for line in text.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("mlplab: error: "), (args, text)
            assert runs == [], (args, runs)
        elif "logger=none" in overrides:  # trained, and told to record nothing
            assert runs == [], (args, runs)
        else:
            jobs = [r for r in runs if r["parent"] is not None or not multirun]
            assert jobs, (args, text)
            assert all(r["status"] == "FINISHED" for r in runs), (args, runs, text)


QUICK_BUDGET = settings(max_examples=30, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.function_scoped_fixture,
                                               HealthCheck.too_slow])


@QUICK_BUDGET
@given(line=command_lines())
def test_any_command_line_exits_0_with_finished_runs_or_2_with_one_line(line, migrated_store):
    _run(*line, migrated_store)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about 2-4 s an example on two shared cores
@settings(QUICK_BUDGET, max_examples=200, derandomize=False)
@given(line=command_lines())
def test_many_command_lines_keep_the_promise(line, migrated_store):
    _run(*line, migrated_store)
