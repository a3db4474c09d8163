"""Mistakes on the command line: status 2, one line naming the key, nothing created."""

from __future__ import annotations

import pytest
from cli_helpers import error_lines, isolated, run_mlplab

from mlplab.cli import main

# Through the real command, in a subprocess: (arguments, what the line must start with,
# what it must list as valid).
SUBPROCESS_CASES = [
    (["optimizer.lrr=0.1"], "optimizer.lrr: unknown key", "l1, lr, max_norm, momentum"),
    (["trainer.epochs=ten"], "trainer.epochs: invalid value 'ten'", "an integer"),
    (["optimizer=adamm"], "optimizer: unknown choice 'adamm'", "adagrad, adam, adamw, momentum"),
    (["-m", "optimizer.lr=0.1,-1", "seed=0,1"], "optimizer.lr: invalid value -1", "> 0"),
]


@pytest.mark.parametrize("args,start,valid", SUBPROCESS_CASES,
                         ids=[" ".join(c[0]) for c in SUBPROCESS_CASES])
def test_config_errors_exit_2_with_one_line_and_no_run(tmp_path, args, start, valid):
    proc = run_mlplab("train", *args, *isolated(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"mlplab: error: {start}")
    assert valid in lines[0]
    assert "Traceback" not in proc.stdout
    # Checked before Hydra ran: no store, no run or sweep directory, no parent run.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# The same code path in this process (faster): main() returns the status.
IN_PROCESS_CASES = [
    (["optimizer.lr=[0.1"], "bad override 'optimizer.lr=[0.1'"),
    (["optimizer.lr=0.1,0.2"], "optimizer.lr: 'optimizer.lr=0.1,0.2' is a sweep"),
    (["experiment=nope"], "experiment: unknown choice 'nope'; valid choices: "),
    (["dataset=moons", "dataset.noise=loud"], "dataset.noise: invalid value 'loud'"),
    (["architecture.activation=relux"], "architecture.activation: unknown value 'relux'"),
    (["trainer.batch_size=5000"], "trainer.batch_size: invalid value 5000"),
    (["+seed2=1"], "seed2: unknown key"),
    (["--multirunn"], "unrecognized arguments: --multirunn"),
    (["dataset=mnist", "data_dir=/nonexistent"], "/nonexistent/mnist"),
    (["-m", "--cfg", "job"], "only one of --run, --multirun (-m), --cfg"),
]


@pytest.mark.parametrize("args,start", IN_PROCESS_CASES,
                         ids=[" ".join(c[0]) for c in IN_PROCESS_CASES])
def test_more_config_errors(tmp_path, capsys, args, start):
    assert main(["train", *args, *isolated(tmp_path)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mlplab: error: ")
    assert start in lines[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_unknown_command(capsys):
    assert main(["trian"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mlplab: error: unknown command 'trian'; valid choices: data, reproduce, runs, train, ui")
