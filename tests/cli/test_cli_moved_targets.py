"""A config that still names a Hydra callback by its old path: status 2, one line naming
the key and the new path, and nothing run or created."""

from __future__ import annotations

import pytest
from cli_helpers import isolated
from hydra.utils import get_class

from mlplab.cli import main
from mlplab.config.moved import MOVED_TARGETS


@pytest.mark.parametrize("old", sorted(MOVED_TARGETS))
def test_an_old_callback_path_is_named_with_its_new_one(tmp_path, capsys, old):
    code = main(["train", "-m", f"+hydra.callbacks.old._target_={old}", "logger=none",
                 "seed=0,1", *isolated(tmp_path)])
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"mlplab: error: hydra.callbacks.old._target_: {old!r} has moved to "
                     f"{MOVED_TARGETS[old]!r}; name that instead"]
    assert list(tmp_path.iterdir()) == []  # no run or sweep directory, no store


def test_a_single_run_is_checked_too(tmp_path, capsys):
    code = main(["train", "+hydra.callbacks.mine._target_=mlplab.worker_pool.WarmWorkers",
                 "logger=none", *isolated(tmp_path)])
    assert code == 2
    assert "hydra.callbacks.mine._target_: 'mlplab.worker_pool.WarmWorkers' has moved to " \
           "'mlplab.multirun.callbacks.WarmWorkers'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("new", sorted(MOVED_TARGETS.values()))
def test_every_new_path_is_a_class_hydra_can_import(new):
    assert get_class(new).__name__ == new.rpartition(".")[2]
