"""`mlplab reproduce`: the tutorials table and the re-run of a logged run (fast variants)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from tutorial_runs import run_preset

from mlplab import cli
from mlplab.reproduction.published import TUTORIALS

TUTORIAL = {t.preset: t for t in TUTORIALS}


class FakeRun:
    """What a check reads from a run, with chosen values."""

    def __init__(self, finals, steps=None, prediction=None):
        self.finals, self.steps, self.prediction = finals, steps or {}, prediction

    def final(self, key):
        return self.finals[key]

    def at(self, key, step):
        return self.steps[(key, step)]

    def predict_raw(self, inputs):
        return self.prediction


def _judge(preset, run):
    return [check.measure(run)[1] for check in TUTORIAL[preset].checks]


def test_edenau_checks_accept_the_published_numbers_and_reject_near_misses():
    import numpy as np

    printed = {("train_edenau_loss", 100_000): 0.35019311736297043}
    printed.update({("train_edenau_loss", e): 0.34499 for e in range(200_000, 1_000_001,
                                                                       100_000)})
    published = np.array([[98.56378114, 102.63221611, 5.56349031, 562.15335048],
                          [-26.25088759, 14.80155747, 21.3245024, 221.60597885],
                          [48.08520947, 25.18205121, 15.71597463, -64.01423955]])
    good = FakeRun({"test_edenau_loss": 0.3194238845483295 + 5e-9}, printed, published + 5e-7)
    assert _judge("edenau_regression", good) == [True, True, True, True]
    late = dict(printed)
    late[("train_edenau_loss", 700_000)] = 0.34506  # prints 0.3451
    bad = FakeRun({"test_edenau_loss": 0.3194238845483295 + 2e-8}, late, published + 2e-6)
    assert _judge("edenau_regression", bad) == [True, False, False, False]


def test_accuracy_checks():
    assert _judge("skalski_moons", FakeRun({"test_accuracy": 0.98})) == [True]
    assert _judge("skalski_moons", FakeRun({"test_accuracy": 0.97})) == [False]
    assert _judge("skalski_circles", FakeRun({"test_accuracy": 0.99})) == [False]
    near = FakeRun({"train_accuracy": 0.834, "test_accuracy": 0.869})
    assert _judge("arask_mnist", near) == [True, True]
    assert _judge("arask_mnist", FakeRun({"train_accuracy": 0.82, "test_accuracy": 0.88})) \
        == [False, False]


def test_tutorials_table_reports_what_the_run_logged(tmp_path, tracking_uri, capsys):
    table = tmp_path / "reproduction.md"
    status = cli.main(["reproduce", "--tutorials", "--only", "skalski_moons",
                       "--tracking-uri", tracking_uri, "--output", str(table),
                       "trainer.epochs=40", "logger.plots=false", "logger.log_model=false"])
    out = capsys.readouterr().out
    assert status == 1  # 40 epochs are far from the published 0.98
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("skalski_moons")
    runs = client.search_runs([experiment.experiment_id],
                              "tags.reproduction = 'tutorials'")
    assert len(runs) == 1
    accuracy = runs[0].data.metrics["test_accuracy"]
    row = [line for line in out.splitlines() if line.startswith("skalski_moons  test accuracy")]
    assert len(row) == 1 and row[0].split()[-2:] == [f"{accuracy:g}", "✗"]
    markdown = table.read_text()
    assert f"| skalski_moons | test accuracy | 0.98 | {accuracy:g} | ✗ |" in markdown
    assert runs[0].info.run_id in markdown


def test_tutorials_skip_mnist_row_without_mnist(tmp_path, tracking_uri, capsys):
    status = cli.main(["reproduce", "--tutorials", "--only", "arask_mnist", "--no-write",
                       "--tracking-uri", tracking_uri, f"data_dir={tmp_path}"])
    out = capsys.readouterr().out
    assert status == 0
    assert "mlplab data mnist" in out
    rows = [line for line in out.splitlines() if line.startswith("arask_mnist ")]
    assert len(rows) == 2 and all(line.endswith("skipped: no MNIST") for line in rows)


def test_rerun_of_a_logged_run_is_identical(tracking_uri, capsys):
    original = run_preset("skalski_moons", ["trainer.epochs=25", "seed=5", "+tags.owner=me"],
                          tracking_uri)
    assert cli.main(["reproduce", original.run_id, "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert "all final metrics identical" in out
    client = MlflowClient(tracking_uri)
    reruns = client.search_runs([client.get_run(original.run_id).info.experiment_id],
                                f"tags.reproduces = '{original.run_id}'")
    assert len(reruns) == 1
    again = reruns[0].data.metrics
    assert again == {k: v[max(v)] for k, v in original.history.items()}
    assert reruns[0].data.params["seed"] == "5"
    assert reruns[0].data.tags["owner"] == "me"


def test_rerun_with_a_changed_value_reports_the_difference(tracking_uri, capsys):
    original = run_preset("skalski_moons", ["trainer.epochs=25"], tracking_uri)
    status = cli.main(["reproduce", original.run_id, "--tracking-uri", tracking_uri,
                       "optimizer.lr=0.02"])
    out = capsys.readouterr().out
    assert status == 1
    assert "final metrics differ" in out
    loss_row = next(line for line in out.splitlines() if line.startswith("train_loss"))
    assert loss_row.endswith("✗")


def _run_with_config(tracking_uri, tmp_path, text):
    client = MlflowClient(tracking_uri)
    # Artifacts beside the store: MLflow's default, ./mlruns, is the project's directory.
    artifacts = Path(tracking_uri.removeprefix("sqlite:///")).parent / "planted"
    experiment = client.get_experiment_by_name("planted") or client.get_experiment(
        client.create_experiment("planted", artifact_location=artifacts.as_uri()))
    run = client.create_run(experiment.experiment_id)
    (tmp_path / "config.yaml").write_text(text)
    client.log_artifact(run.info.run_id, str(tmp_path / "config.yaml"))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.mark.parametrize("text", [
    "dataset: {name: moons}\nextra:\n  _target_: os.system\n  _args_: [touch {marker}]\n",
    "dataset: {name: moons}\ndata_dir: ${oc.env:HOME}\n",
    "!!python/object/apply:os.system ['touch {marker}']\n",
])
def test_rerun_treats_the_logged_config_as_data(tracking_uri, tmp_path, capsys, text):
    marker = tmp_path / "executed"
    run_id = _run_with_config(tracking_uri, tmp_path, text.replace("{marker}", str(marker)))
    status = cli.main(["reproduce", run_id, "--tracking-uri", tracking_uri])
    ours = [line for line in capsys.readouterr().err.splitlines()
            if line.startswith("mlplab:")]  # MLflow may log its own lines there
    assert status == 2
    assert len(ours) == 1 and "config.yaml" in ours[0]
    assert not marker.exists()


def test_rerun_of_an_unknown_run_is_a_usage_error(tracking_uri, capsys):
    assert cli.main(["reproduce", "0" * 32, "--tracking-uri", tracking_uri]) == 2
    assert "no run" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "fragment"), [
    ([], "RUN_ID"),
    (["--only", "skalski_moons"], "--only"),
    (["--tutorials", "--only", "edenau"], "valid choices: arask_mnist, edenau_regression"),
    (["trainer.epochs=3"], "RUN_ID"),
])
def test_usage_errors_are_one_line(capsys, argv, fragment):
    assert cli.main(["reproduce", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlplab: error:") and fragment in err[0]


def test_the_full_table_goes_to_a_git_ignored_file_so_the_checkout_stays_clean():
    import shutil
    import subprocess

    from mlplab.cli.reproduce import _output_path
    from mlplab.config import project_root
    from mlplab.reproduction.published import TUTORIAL_NAMES

    default = _output_path(None, list(TUTORIAL_NAMES))
    assert default is not None and default.is_relative_to(project_root())
    assert "docs" not in default.relative_to(project_root()).parts
    if shutil.which("git") is None or not (project_root() / ".git").exists():
        pytest.skip("not a git checkout: cannot ask git what it ignores")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=project_root())
    assert ignored.returncode == 0, f"{default} would be tracked by git"
