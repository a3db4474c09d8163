"""Jobs that preflight composed and validated are not composed again before launching."""

from __future__ import annotations

import pytest
from hydra._internal.core_plugins import basic_sweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from mlplab.config.preflight import check_command_line, job_key, skip_recomposing
from mlplab.errors import ConfigError

# Spellings that Hydra rewrites when it expands a sweep: a range, a list with a space, a
# value with a space, a new key, and hydra.* overrides (applied to the sweep, not the jobs).
SWEEP = ["experiment=quick_moons", "seed=range(0,3)", "optimizer.lr=0.01,0.1",
         "architecture.hidden=[16, 16],[8]", "+tags.note=two words",
         "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def test_every_job_the_basic_sweeper_launches_counts_as_checked():
    checked: set = set()
    assert check_command_line(SWEEP, multirun=True, checked=checked) == 12
    parser = OverridesParser.create()
    task = [o for o in parser.parse_overrides(SWEEP) if not o.is_hydra_override()]
    [batch] = basic_sweeper.BasicSweeper.split_arguments(task, None)
    assert len(batch) == 12
    assert {job_key(parser, job) for job in batch} == checked


def test_a_failed_check_marks_nothing_as_checked():
    checked: set = set()
    with pytest.raises(ConfigError, match="optimizer.lr"):
        check_command_line(["optimizer.lr=0.1,-1"], multirun=True, checked=checked)
    assert checked == set()


def test_only_unchecked_jobs_are_composed_again_and_hydra_is_restored(monkeypatch):
    # Looked up now: Hydra's plugin scan re-executes its plugin modules (new class objects).
    BasicSweeper = basic_sweeper.BasicSweeper  # noqa: N806
    composed = []
    monkeypatch.setattr(BasicSweeper, "validate_batch_is_legal",
                        lambda self, batch: composed.append(batch))
    original = BasicSweeper.validate_batch_is_legal
    checked = {job_key(OverridesParser.create(), ["seed=0", "optimizer.lr=0.1"])}
    sweeper = object.__new__(BasicSweeper)
    with skip_recomposing(checked):
        sweeper.validate_batch_is_legal([["optimizer.lr=0.1", "seed=0"],
                                         ["optimizer.lr=0.1", "seed=1"]])
        sweeper.validate_batch_is_legal([["optimizer.lr=0.1", "seed=0"]])
    assert composed == [[["optimizer.lr=0.1", "seed=1"]]]
    assert BasicSweeper.validate_batch_is_legal is original
    sweeper.validate_batch_is_legal([["optimizer.lr=0.1", "seed=0"]])
    assert composed[-1] == [["optimizer.lr=0.1", "seed=0"]]
