"""`mlplab <command>` reaches the right part; `mlplab train --help` lists real choices."""

from __future__ import annotations

import importlib.util

import pytest

from mlplab import __version__
from mlplab.cli import main


def test_train_help_lists_the_groups_but_not_the_schemas(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "optimizer: adagrad, adam, adamw, momentum, nesterov, rmsprop, sgd" in out
    assert "experiment: " in out and "quick_moons" in out
    assert "schema/" not in out
    assert "mlplab train -m hydra/launcher=local_parallel" in out


def _status(argv) -> int:
    """main's status, whether the command returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


def test_data_goes_to_the_data_command(capsys):
    assert _status(["data", "--help"]) == 0
    assert "usage: mlplab data" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("mlplab.cli.reproduce") is None,
                    reason="mlplab.cli.reproduce is not part of this checkout")
def test_reproduce_goes_to_the_reproduce_module(capsys):
    assert _status(["reproduce", "--help"]) == 0
    assert "--tutorials" in capsys.readouterr().out


def test_reproduce_without_its_module_is_a_clear_error(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlplab.cli.reproduce"
                        else real_find_spec(name, *a))
    assert main(["reproduce", "RUN_ID"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlplab: error: reproduce: not available") and "\n" not in err


def test_version_and_usage(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mlplab {__version__}"
    assert main([]) == 2
    assert "train [OVERRIDES] [-m]" in capsys.readouterr().out
