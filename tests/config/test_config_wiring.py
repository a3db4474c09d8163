"""Each config file builds the engine object it describes, with the values it states."""

from __future__ import annotations

import numpy as np
import pytest
from config_helpers import group_options
from omegaconf import OmegaConf

from mlplab.config import compose_train
from mlplab.data import Dataset, dataset_defaults
from mlplab.job.build import build_model, build_optimizer, build_schedule


def _toy_dataset(n_features=3, n_train=8) -> Dataset:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_train, n_features))
    y = (X[:, 0] > 0).astype(np.int64)
    return Dataset("toy", "binary", X, y, X[:2], y[:2], n_classes=2)


@pytest.mark.parametrize("option", group_options("optimizer"))
def test_every_optimizer_file_builds_with_its_values(option):
    cfg = compose_train(f"optimizer={option}", "optimizer.lr=0.123", "optimizer.weight_decay=0.01")
    optimizer = build_optimizer(cfg, build_model(cfg, _toy_dataset()))
    assert optimizer.name == cfg.optimizer.name
    assert optimizer.lr == 0.123 and optimizer.weight_decay == 0.01
    if "betas" in cfg.optimizer:
        assert (optimizer.beta1, optimizer.beta2) == tuple(cfg.optimizer.betas)
    if "momentum" in cfg.optimizer:
        assert optimizer.momentum == cfg.optimizer.momentum


def test_adam_betas_reach_the_engine():
    cfg = compose_train("optimizer=adam", "optimizer.betas=[0.8,0.95]")
    optimizer = build_optimizer(cfg, build_model(cfg, _toy_dataset()))
    assert (optimizer.beta1, optimizer.beta2) == (0.8, 0.95)


@pytest.mark.parametrize("option", group_options("schedule"))
def test_every_schedule_file_builds(option):
    cfg = compose_train(f"schedule={option}", "optimizer.lr=0.5", "trainer.epochs=40")
    schedule = build_schedule(cfg)
    assert schedule.name == option
    assert schedule.lr_at(0) == pytest.approx(0.5)


def test_cosine_runs_over_the_trainer_epochs_by_default():
    cfg = compose_train("schedule=cosine", "optimizer.lr=1.0", "trainer.epochs=40")
    schedule = build_schedule(cfg)
    assert schedule.epochs == 40
    assert schedule.lr_at(20) == pytest.approx(0.5)  # half way down the cosine


@pytest.mark.parametrize("option", group_options("dataset"))
def test_dataset_schema_has_exactly_the_loader_keys(option):
    node = compose_train(f"dataset={option}").dataset
    assert set(node) == set(dataset_defaults(node.name))
    assert OmegaConf.get_type(node).__module__ == "mlplab.config.dataset_schemas"


def test_legacy_initializer_draws_the_tutorial_stream():
    # edenau: W and b ~ randn * sqrt(2 / fan_in), in the order W1, b1, W2, b2, ...
    cfg = compose_train("initializer=edenau", "architecture.hidden=[4]", "seed=42")
    np.random.seed(42)  # noqa: NPY002 (the legacy stream is the point)
    model = build_model(cfg, _toy_dataset(n_features=3))
    np.random.seed(42)  # noqa: NPY002
    expected = [np.random.randn(4, 3) * np.sqrt(2 / 3), np.random.randn(4, 1) * np.sqrt(2 / 3),  # noqa: NPY002
                np.random.randn(1, 4) * np.sqrt(2 / 4), np.random.randn(1, 1) * np.sqrt(2 / 4)]  # noqa: NPY002
    for got, want in zip(model.params, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_normal_initializer_uses_its_std_and_constant_biases():
    cfg = compose_train("initializer=normal", "initializer.std=0.1", "initializer.bias=constant",
                        "initializer.bias_value=0.5", "architecture.hidden=[400]")
    model = build_model(cfg, _toy_dataset(n_features=300))
    W1, b1 = model.params[0], model.params[1]
    assert W1.std() == pytest.approx(0.1, rel=0.02)  # 120,000 draws
    np.testing.assert_array_equal(b1, 0.5)


def test_seed_decides_the_initial_weights():
    data = _toy_dataset()
    first = build_model(compose_train("seed=1"), data).params[0]
    again = build_model(compose_train("seed=1"), data).params[0]
    other = build_model(compose_train("seed=2"), data).params[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_dtype_reaches_the_model():
    cfg = compose_train("trainer.dtype=float32")
    assert build_model(cfg, _toy_dataset()).params[0].dtype == np.float32
