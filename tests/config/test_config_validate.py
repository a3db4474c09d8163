"""Values that are well-typed but meaningless fail with one line naming the key."""

from __future__ import annotations

import pytest

from mlplab.config import compose_train, validate, validate_for_dataset
from mlplab.errors import ConfigError
from mlplab.job.build import build_model, load_data

BAD_VALUES = [
    (["optimizer.lr=-1"], "optimizer.lr", "> 0"),
    (["optimizer.lr=0"], "optimizer.lr", "> 0"),
    (["trainer.epochs=0"], "trainer.epochs", ">= 1"),
    (["trainer.batch_size=0"], "trainer.batch_size", ">= 1"),
    (["architecture.hidden=[8,0]"], "architecture.hidden", ">= 1"),
    (["architecture.activation=relux"], "architecture.activation", "leaky_relu"),
    (["architecture.loss=hinge"], "architecture.loss", "softmax_cross_entropy"),
    (["architecture.loss=binary_cross_entropy", "architecture.output_activation=softmax"],
     "architecture.output_activation", "sigmoid"),
    (["trainer.dtype=float16"], "trainer.dtype", "float32, float64"),
    (["trainer.log_every=0"], "trainer.log_every", "auto"),
    (["trainer.monitor=loss"], "trainer.monitor", "test_loss"),
    (["trainer.mode=up"], "trainer.mode", "max, min"),
    (["trainer.shuffle=sometimes"], "trainer.shuffle", "legacy"),
    (["trainer.train_metrics=never"], "trainer.train_metrics", "post_update"),
    (["trainer.extra_metrics=[nope]"], "trainer.extra_metrics", "edenau_loss"),
    (["trainer.early_stopping.patience=0"], "trainer.early_stopping.patience", ">= 1"),
    (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas", "[0, 1)"),
    (["optimizer=momentum", "optimizer.momentum=1.0"], "optimizer.momentum", "[0, 1)"),
    (["optimizer.clip_norm=-2"], "optimizer.clip_norm", "> 0"),
    (["initializer=normal", "initializer.std=0"], "initializer.std", "> 0"),
    (["initializer.bias=random"], "initializer.bias", "constant, same, zeros"),
    (["schedule=cosine", "schedule.warmup_epochs=100"], "schedule.warmup_epochs", "100"),
    (["schedule=step", "schedule.step_size=0"], "schedule.step_size", ">= 1"),
    (["logger.name=wandb"], "logger.name", "mlflow, none"),
    (["seed=-1"], "seed", "2**32"),
    (["logger=none", "trainer.resume=abc123"], "trainer.resume", "logger=mlflow"),
    (["+optimizer.zzz=1"], "optimizer.zzz", "weight_decay"),
    (["+trainer.early_stopping.wait=3"], "trainer.early_stopping.wait", "patience"),
]


@pytest.mark.parametrize("overrides,key,valid", BAD_VALUES,
                         ids=[" ".join(case[0]) for case in BAD_VALUES])
def test_bad_value_names_its_key_and_what_is_valid(overrides, key, valid):
    cfg = compose_train(*overrides)
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    message = str(error.value)
    assert message.startswith(f"{key}:")
    assert valid in message
    assert "\n" not in message


@pytest.mark.parametrize("overrides", [
    ["optimizer.lr=1e-6"], ["trainer.epochs=1"], ["trainer.batch_size=1"],
    ["architecture.hidden=[]"], ["architecture.loss=mse", "architecture.output_activation=softmax"],
    ["optimizer=adam", "optimizer.betas=[0.0,0.5]"], ["trainer.log_every=7"],
    ["trainer.shuffle=legacy"], ["trainer.extra_metrics=[edenau_loss]"]])
def test_edge_values_that_make_sense_pass(overrides):
    validate(compose_train(*overrides))


def _with_data(*overrides):
    cfg = compose_train(*overrides)
    validate(cfg)
    return cfg, load_data(cfg)


def test_batch_size_may_not_exceed_the_training_set():
    # moons: 1000 samples, 10% held out -> 900 training samples.
    cfg, data = _with_data("trainer.batch_size=900")
    validate_for_dataset(cfg, data)
    cfg, data = _with_data("trainer.batch_size=901")
    with pytest.raises(ConfigError, match=r"^trainer\.batch_size: .*\(900\)"):
        validate_for_dataset(cfg, data)


def test_loss_must_fit_the_task():
    # sigmoid outputs over several classes are the one-vs-all network: valid
    cfg, data = _with_data("dataset=blobs", "architecture.loss=binary_cross_entropy")
    validate_for_dataset(cfg, data)
    cfg, data = _with_data("dataset=sum_diff", "dataset.n_samples=100",
                           "architecture.loss=binary_cross_entropy")
    with pytest.raises(ConfigError, match=r"^architecture\.loss: .*regression.*mse"):
        validate_for_dataset(cfg, data)
    cfg, data = _with_data("dataset=sum_diff", "dataset.n_samples=100",
                           "architecture.loss=softmax_cross_entropy")
    with pytest.raises(ConfigError, match=r"^architecture\.loss: .*regression.*mse"):
        validate_for_dataset(cfg, data)


def test_monitor_must_be_a_metric_the_run_reports():
    cfg, data = _with_data("dataset=sum_diff", "dataset.n_samples=100",
                           "trainer.monitor=test_accuracy")
    with pytest.raises(ConfigError, match=r"^trainer\.monitor: .*test_loss"):
        validate_for_dataset(cfg, data)
    cfg, data = _with_data("trainer.monitor=val_loss")
    with pytest.raises(ConfigError, match=r"^trainer\.monitor: .*test_accuracy"):
        validate_for_dataset(cfg, data)
    cfg, data = _with_data("trainer.monitor=val_loss", "dataset.val_size=0.2")
    validate_for_dataset(cfg, data)


def test_binary_task_has_one_output_unit_so_no_softmax():
    cfg, data = _with_data("architecture.output_activation=softmax")
    with pytest.raises(ConfigError, match=r"^architecture\.output_activation: .*sigmoid"):
        validate_for_dataset(cfg, data)


# task -> (output units, output activation, loss) as the architecture docs promise.
OUTPUT_HEADS = [
    (["dataset=sum_diff", "dataset.n_samples=100"], 3, "identity", "mse"),
    (["dataset=moons"], 1, "sigmoid", "binary_cross_entropy"),
    (["dataset=blobs", "dataset.centers=4"], 4, "softmax", "softmax_cross_entropy"),
    (["dataset=blobs", "architecture.loss=softmax_mse_nojac"], 3, "softmax",
     "softmax_mse_nojac"),
    (["dataset=moons", "architecture.loss=mse"], 1, "sigmoid", "mse"),
    (["dataset=blobs", "architecture.output_activation=sigmoid"], 3, "sigmoid", "mse"),
    (["dataset=sum_diff", "dataset.n_samples=100", "architecture.output_activation=tanh"], 3,
     "tanh", "mse"),
]


@pytest.mark.parametrize("overrides,units,activation,loss", OUTPUT_HEADS,
                         ids=[" ".join(case[0]) for case in OUTPUT_HEADS])
def test_output_layer_follows_the_task_unless_configured(overrides, units, activation, loss):
    cfg, data = _with_data(*overrides, "architecture.hidden=[5]")
    validate_for_dataset(cfg, data)
    model = build_model(cfg, data)
    assert model.sizes == [data.n_features, 5, units]
    assert model.layers[-1].activation.name == activation
    assert model.loss_fn.name == loss
