"""`mlplab train dataset=file`: a user's CSV or .npz end to end into MLflow, with the
file's sha256 as the dataset digest; bad files exit 2 with one line and make no run."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from cli_helpers import all_runs, error_lines, isolated, run_mlplab

from mlplab.cli import main

FAST = ["trainer.epochs=3", "trainer.log_every=1", "logger.log_model=false",
        "logger.plots=false", "architecture.hidden=[8]"]


def write_csv(path, text: str):
    path.write_text(text)
    return path


def two_files(directory):
    """A binary CSV and a three-class .npz."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 3))
    lines = ["a,b,c,label"] + [",".join(repr(float(v)) for v in row) + f",{int(row[0] > 0)}"
                               for row in X]
    csv_path = write_csv(directory / "a.csv", "\n".join(lines) + "\n")
    npz_path = directory / "b.npz"
    np.savez(npz_path, X=X[:, :2], y=np.arange(90) % 3)
    return csv_path, npz_path


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sweep_over_a_csv_and_an_npz_logs_each_file_digest(store):
    csv_path, npz_path = two_files(store)
    proc = run_mlplab("train", "-m", "dataset=file", f"dataset.path={csv_path},{npz_path}",
                      f"data_dir={store / 'data'}", *FAST, *isolated(store), cwd=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = [r for r in all_runs(store) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    by_path = {r.data.params["dataset.path"]: r for r in children}
    for path, task in ((csv_path, "binary"), (npz_path, "multiclass")):
        run = by_path[str(path)]
        digest = sha256(path)
        assert run.data.params["dataset.sha256"] == digest
        assert run.data.params["dataset.task"] == "auto"
        assert run.data.tags["dataset_task"] == task
        [entry] = run.inputs.dataset_inputs
        assert entry.dataset.digest == digest[:36] and entry.dataset.name == path.stem
        assert str(path) in entry.dataset.source
    assert by_path[str(npz_path)].data.params["architecture.loss"] == "softmax_cross_entropy"


def test_help_lists_the_file_dataset_and_its_keys(capsys):
    assert main(["train", "--help", "dataset=file"]) == 0
    out = capsys.readouterr().out
    assert "file" in next(line for line in out.splitlines() if line.startswith("dataset:"))
    assert "  path: ''" in out and "  task: auto" in out


GOOD = "a,b,label\n" + "".join(f"{i},{i * 0.5},{i % 2}\n" for i in range(20))
# (file name, its text, extra overrides, what the one line must contain)
BAD_FILES = [
    ("missing.csv", None, [], "dataset.path: no such file"),
    ("t.csv", GOOD, ["dataset.target=zz"],
     "dataset.target: t.csv has no column 'zz'; its columns: a, b, label"),
    ("t.csv", GOOD, ["dataset.features=[a,q]"], "dataset.features: t.csv has no column 'q'"),
    ("t.csv", GOOD.replace("3,1.5,", "3,abc,"), [],
     "t.csv: line 5, column 'b': non-numeric value 'abc'"),
    ("t.csv", GOOD.replace("3,1.5,", "3,,"), [], "t.csv: line 5, column 'b': non-numeric "
                                                 "value ''"),
    ("t.csv", GOOD.replace("4,2.0,", "nan,2.0,"), [],
     "t.csv: line 6, column 'a': nan (NaN or infinite)"),
    ("t.csv", GOOD.replace("5,2.5,1\n", "5,2.5\n"), [], "t.csv: line 7 has 2 cells, the "
                                                        "header has 3"),
    ("t.csv", "a,label\n" + "".join(f"{i},1\n" for i in range(20)), [],
     "target 'label' has one class only (1 in every row)"),
    ("t.csv", GOOD + "20,10.0,2\n", ["dataset.stratify=true", "dataset.task=multiclass"],
     "t.csv: class 2 of target 'label' has a single sample; a stratified split"),
    ("t.xlsx", GOOD, [], "unknown extension '.xlsx'; valid extensions: .csv, .tsv, .npy, "
                         ".npz, .parquet"),
    ("t.csv", "a,b,label\n", [], "t.csv: no data rows below the header"),
    ("t.npz", b"not a zip", [], "t.npz: not a readable .npz archive"),
]


@pytest.mark.parametrize("name,text,extra,expected", BAD_FILES,
                         ids=[case[3][:40] for case in BAD_FILES])
def test_bad_file_exits_2_with_one_line_and_no_run(tmp_path, capsys, name, text, extra,
                                                   expected):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    status = main(["train", "dataset=file", f"dataset.path={path}",
                   f"data_dir={tmp_path / 'data'}", *extra, *isolated(tmp_path)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("mlplab: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "mlflow.db").exists()  # refused before any store or run


def test_multilabel_file_trains_sigmoid_outputs_with_binary_cross_entropy(tmp_path):
    # two 0/1 target columns, each a function of x: a multi-label task inferred from the file
    text = "x,p,q\n" + "".join(f"{i},{i % 2},{(i // 2) % 2}\n" for i in range(40))
    path = write_csv(tmp_path / "m.csv", text)
    proc = run_mlplab("train", "dataset=file", f"dataset.path={path}", "dataset.target=[p,q]",
                      f"data_dir={tmp_path / 'data'}", *FAST, *isolated(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [run] = all_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dataset_task"] == "multilabel"
    assert run.data.params["architecture.loss"] == "binary_cross_entropy"
    assert run.data.params["architecture.output_activation"] == "sigmoid"


def test_sweep_with_one_missing_file_is_refused_before_any_run(tmp_path):
    csv_path, _ = two_files(tmp_path)
    proc = run_mlplab("train", "-m", "dataset=file", f"dataset.path={csv_path},missing.csv",
                      f"data_dir={tmp_path / 'data'}", *FAST, *isolated(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = error_lines(proc)
    assert line.startswith("mlplab: error: dataset.path: no such file 'missing.csv' (looked "
                           f"for {tmp_path / 'missing.csv'} and {tmp_path / 'data'}")
    assert not (tmp_path / "mlflow.db").exists()  # preflight: no parent run, no child
