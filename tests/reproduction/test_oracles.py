"""mlplab against the independent oracles, a few hundred epochs per tutorial (fast).

Each preset is composed and trained through the real app and MLflow; the oracle
re-implements the tutorial from its equations. Every logged metric at every logged epoch
and the final weights must agree to 1e-10 relative (float64), which fails on any
difference in data, initialisation order, gradient, update, shuffling or metric definition.
"""

from __future__ import annotations

import pytest
from tutorial_runs import (
    assert_histories_match,
    assert_params_match,
    project_mnist_dir,
    run_preset,
    write_fake_mnist,
)

from oracles import arask, edenau, skalski


def test_edenau_matches_oracle(tracking_uri):
    epochs = 300
    run = run_preset("edenau_regression", [f"trainer.epochs={epochs}", "trainer.log_every=7"],
                     tracking_uri)
    oracle = edenau.run(epochs, log_every=1)
    assert run.status == "FINISHED"
    keys = ("train_loss", "train_edenau_loss", "test_loss", "test_edenau_loss")
    assert sorted(run.history) == sorted(keys)
    assert_histories_match(run.history, oracle["history"], keys)
    assert_params_match(run.weights, oracle["params"])


@pytest.mark.parametrize(("preset", "dataset", "epochs"), [
    ("skalski_moons", "moons", 200),
    ("skalski_circles", "circles", 60),
])
def test_skalski_matches_oracle(tracking_uri, preset, dataset, epochs):
    run = run_preset(preset, [f"trainer.epochs={epochs}", "trainer.log_every=5"], tracking_uri)
    # The circles preset leaves the data seed to the run seed (2).
    data_seed = None if dataset == "moons" else 2
    oracle = skalski.run(epochs, dataset=dataset, data_seed=data_seed, log_every=1)
    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    assert sorted(run.history) == sorted(keys)
    assert_histories_match(run.history, oracle["history"], keys)
    assert_params_match(run.weights, oracle["params"])


def _mnist_source(source, tmp_path):
    """(data_dir override, images/labels for the oracle) for real or fake MNIST."""
    if source == "mnist":
        directory = project_mnist_dir()
        if directory is None:
            pytest.skip("no MNIST in <data_dir>/mnist (get it with `mlplab data mnist`)")
        return [], arask.load_mnist(directory)
    directory = write_fake_mnist(tmp_path, n_train=2000, n_test=300)
    return [f"data_dir={tmp_path}", "dataset.verify=false", "dataset.cache=false"], \
        arask.load_mnist(directory)


@pytest.mark.parametrize("source", ["fake", "mnist"])
def test_arask_matches_oracle(tracking_uri, tmp_path, source):
    n_train, n_test, epochs, seed = 2000, 300, 2, 3
    data_overrides, (x_tr, y_tr, x_te, y_te) = _mnist_source(source, tmp_path)
    run = run_preset("arask_mnist", [*data_overrides, f"dataset.n_train={n_train}",
                                     f"dataset.n_test={n_test}", f"trainer.epochs={epochs}",
                                     f"seed={seed}"], tracking_uri)
    oracle = arask.run(epochs, x_tr[:n_train], y_tr[:n_train], x_te[:n_test], y_te[:n_test],
                       seed=seed)
    keys = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    assert sorted(run.history) == sorted(keys)
    assert_histories_match(run.history, oracle["history"], keys)
    assert_params_match(run.weights, oracle["params"])
