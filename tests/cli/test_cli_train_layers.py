"""The new architecture and optimizer keys through the real `mlplab train`: shown in
--help, logged as params, their arrays in the weights artifact, searchable by a plain sweep
and by the Optuna sweeper."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from cli_helpers import FAST, all_runs, client, isolated, run_mlplab

NEW_KEYS = ("label_smoothing", "norm", "norm_momentum", "norm_eps", "dropout", "l1",
            "decay_biases", "max_norm")


def test_help_shows_the_new_keys(tmp_path):
    proc = run_mlplab("train", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for key in NEW_KEYS:
        assert f"{key}:" in proc.stdout, key


def test_a_run_with_norm_dropout_and_penalties_logs_them_and_their_arrays(store):
    proc = run_mlplab("train", *FAST, "architecture.hidden=[8,6]", "architecture.norm=batch",
                      "architecture.dropout=[0.2,0.1]", "architecture.label_smoothing=0.1",
                      "optimizer.decay_biases=false", "optimizer.l1=0.001",
                      "optimizer.max_norm=2.0", "trainer.batch_size=50", *isolated(store),
                      cwd=store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = all_runs(store)
    params = run.data.params
    assert params["architecture.norm"] == "batch"
    assert params["architecture.dropout"] == "[0.2, 0.1]"
    assert params["optimizer.decay_biases"] == "false"
    assert params["optimizer.max_norm"] == "2.0"
    path = client(store).download_artifacts(run.info.run_id, "weights/final.npz", str(store))
    with np.load(path, allow_pickle=False) as weights:
        shapes = {name: weights[name].shape for name in weights.files}
        assert np.linalg.norm(weights["W1"], axis=1).max() <= 2.0 + 1e-12
    for k, units in ((1, 8), (2, 6)):
        for kind in ("gain", "bias", "running_mean", "running_var"):
            assert shapes[f"norm{k}_{kind}"] == (units, 1)


@pytest.mark.slow
def test_a_plain_sweep_and_an_optuna_search_over_the_new_keys(store):
    proc = run_mlplab("train", "-m", *FAST, "architecture.norm=batch,layer",
                      "architecture.dropout=0.0,0.3", *isolated(store), cwd=store, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = [r for r in all_runs(store) if "mlflow.parentRunId" in r.data.tags]
    assert sorted((r.data.params["architecture.norm"], r.data.params["architecture.dropout"])
                  for r in children) == [("batch", "0.0"), ("batch", "0.3"),
                                         ("layer", "0.0"), ("layer", "0.3")]

    searched = store / "optuna"
    searched.mkdir()
    proc = run_mlplab("train", "-m", *FAST, "hydra/sweeper=mlplab_optuna",
                      f"hydra.sweeper.storage=sqlite:///{searched / 'study.db'}",
                      "hydra.sweeper.study_name=layers", "hydra.sweeper.n_trials=3",
                      "architecture.dropout=interval(0.0, 0.5)",
                      "architecture.norm=choice(none, batch, layer)",
                      "optimizer.decay_biases=choice(true, false)",
                      "architecture.label_smoothing=interval(0.0, 0.2)",
                      f"logger.tracking_uri=sqlite:///{searched / 'mlflow.db'}",
                      f"hydra.sweep.dir={searched / 'sweep'}", cwd=searched, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="layers", storage=f"sqlite:///{searched / 'study.db'}")
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        assert 0.0 <= trial.params["architecture.dropout"] <= 0.5
        assert trial.params["architecture.norm"] in ("none", "batch", "layer")
