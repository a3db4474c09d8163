"""`mlplab train` composes each job's config once in the launching process: preflight's
composition is not repeated by Hydra's mode check, its sweepers or `--cfg`. What remains
is Hydra's own composition of the sweep's config, and of the jobs it runs here once per
distinct set of group choices (`mlplab.config.sweep_jobs`)."""

from __future__ import annotations

import pytest
from cli_helpers import isolated
from hydra._internal.config_loader_impl import ConfigLoaderImpl

from mlplab.cli import main

TINY = ["logger=none", "dataset.n_samples=100", "trainer.epochs=1"]


@pytest.fixture
def composed(monkeypatch):
    """Every full composition in this process, as the overrides it was given."""
    seen: list[list[str]] = []
    original = ConfigLoaderImpl.load_configuration

    def counting(self, config_name, overrides, *args, **kwargs):
        seen.append([o for o in overrides if not o.startswith("hydra.")])
        return original(self, config_name, overrides, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    return seen


def test_a_single_run_is_composed_by_preflight_and_by_the_run(tmp_path, composed):
    assert main(["train", *TINY, *isolated(tmp_path)]) == 0
    assert len(composed) == 2
    # The run's own last; preflight composes the group choices and applies the values.
    assert composed[1] == [o for o in [*TINY, *isolated(tmp_path)] if not o.startswith("hydra.")]
    assert composed[0] == ["logger=none"]


def test_a_grid_sweep_composes_each_job_once_besides_running_it(tmp_path, composed):
    assert main(["train", "-m", *TINY, "seed=1,2", *isolated(tmp_path)]) == 0
    # preflight (one set of group choices), the sweep's config, then the group choices of
    # the two jobs run here, once: their seeds are applied to copies
    assert len(composed) == 3
    assert composed[2] == ["logger=none"]


def test_cfg_composes_once(tmp_path, composed, capsys):
    assert main(["train", "--cfg", "job", *TINY, *isolated(tmp_path)]) == 0
    assert "n_samples: 100" in capsys.readouterr().out
    assert len(composed) == 1


def test_cfg_reports_a_mistake_in_one_line(tmp_path, composed, capsys):
    assert main(["train", "--cfg", "job", "optimizer=adamm", *isolated(tmp_path)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlplab: error: optimizer: unknown choice")
    assert len(composed) == 1


def test_the_optuna_sweeper_does_not_compose_its_first_batch_again(tmp_path, composed):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["train", "-m", "hydra/sweeper=mlplab_optuna", "optimizer.lr=interval(0.01,0.1)",
                 "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                 f"hydra.sweeper.storage={storage}", *TINY, *isolated(tmp_path)]) == 0
    # preflight, the sweep's config, the group choices of the two trials' jobs run here,
    # once (their trial numbers and learning rates are values applied to copies)
    assert len(composed) == 3
    assert composed[2] == ["hydra/sweeper=mlplab_optuna", "logger=none"]
