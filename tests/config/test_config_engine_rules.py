"""The config and the engine give the same verdict on the same value: one rule, two paths.

Each case is a value at or next to a boundary, tried once through the config
(`compose_train` + `validate`, the message naming the config key) and once through the
engine's own factory (the message naming the engine's parameter), with the verdict the
rule promises.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlplab.config import compose_train, validate
from mlplab.errors import ConfigError
from mlplab.nn import MLP, get_activation, get_initializer, get_optimizer, get_schedule
from mlplab.training import EarlyStopping, Trainer


def _optimizer(name, lr=0.1, **kwargs):
    return get_optimizer(name, [np.zeros((2, 2))], lr, **kwargs)


def _trainer(**kwargs):
    model = MLP([2, 1], ["identity"], "mse")
    return Trainer(model, get_optimizer("sgd", model.params, 0.1), **{"epochs": 3, **kwargs})


# (config overrides, config key, engine call, engine key, valid), values at the boundaries
CASES = []


def case(overrides, key, engine, engine_key, valid):
    CASES.append(pytest.param(overrides, key, engine, engine_key, valid,
                              id=" ".join(overrides)))


for value, valid in [(-0.1, False), (0, True), (0.999, True), (1.0, False)]:
    for optimizer in ("sgd", "momentum", "rmsprop"):  # the copies that used to disagree
        case([f"optimizer={optimizer}", f"optimizer.momentum={value}"], "optimizer.momentum",
             lambda o=optimizer, v=value: _optimizer(o, momentum=v), "optimizer.momentum", valid)
for value, valid in [(0, True), (1.0, False)]:
    case(["optimizer=adam", f"optimizer.betas=[0.9,{value}]"], "optimizer.betas",
         lambda v=value: _optimizer("adam", beta2=v), "optimizer.beta2", valid)
    case(["optimizer=nesterov", f"optimizer.momentum={value or 0.5}"], "optimizer.momentum",
         lambda v=value or 0.5: _optimizer("nesterov", momentum=v), "optimizer.momentum",
         valid)
for value, valid in [(0, False), (1e-9, True)]:
    case([f"optimizer.lr={value}"], "optimizer.lr", lambda v=value: _optimizer("sgd", lr=v),
         "optimizer.lr", valid)
    case(["initializer=normal", f"initializer.std={value}"], "initializer.std",
         lambda v=value: get_initializer("normal", std=v), "initializer.std", valid)
for value, valid in [(-0.5, False), (0, True)]:
    case([f"optimizer.weight_decay={value}"], "optimizer.weight_decay",
         lambda v=value: _optimizer("sgd", weight_decay=v), "optimizer.weight_decay", valid)
    case(["architecture.activation=leaky_relu", f"+architecture.activation_params.alpha={value}"],
         "architecture.activation_params.alpha",
         lambda v=value: get_activation("leaky_relu", alpha=v), "activation.alpha", valid)
    case([f"trainer.early_stopping.min_delta={value}"], "trainer.early_stopping.min_delta",
         lambda v=value: EarlyStopping(min_delta=v), "trainer.early_stopping.min_delta", valid)
for momentum, valid in [(0, False), (0.5, True)]:
    case([f"optimizer.momentum={momentum}", "optimizer.nesterov=true"], "optimizer.nesterov",
         lambda m=momentum: _optimizer("sgd", momentum=m, nesterov=True), "optimizer.nesterov",
         valid)
for value, valid in [(0, False), (0.5, True), (1, False)]:
    case(["schedule=reduce_on_plateau", f"schedule.factor={value}"], "schedule.factor",
         lambda v=value: get_schedule("reduce_on_plateau", 0.1, factor=v), "schedule.factor",
         valid)
for value, valid in [(0, False), (1, True)]:
    case(["schedule=step", f"schedule.step_size={value}"], "schedule.step_size",
         lambda v=value: get_schedule("step", 0.1, step_size=v), "schedule.step_size", valid)
    for key in ("epochs", "batch_size", "checkpoint_every", "log_every"):
        case([f"trainer.{key}={value}"], f"trainer.{key}",
             lambda k=key, v=value: _trainer(**{k: v}), f"trainer.{key}", valid)
    case([f"trainer.early_stopping.patience={value}"], "trainer.early_stopping.patience",
         lambda v=value: EarlyStopping(patience=v), "trainer.early_stopping.patience", valid)
for value, valid in [(99, True), (100, False)]:
    case(["schedule=cosine", "trainer.epochs=100", f"schedule.warmup_epochs={value}"],
         "schedule.warmup_epochs",
         lambda v=value: get_schedule("cosine", 0.1, epochs=100, warmup_epochs=v),
         "schedule.warmup_epochs", valid)
for value, valid in [(0.1, True), (0.11, False)]:
    case(["schedule=cosine", "optimizer.lr=0.1", f"schedule.min_lr={value}"], "schedule.min_lr",
         lambda v=value: get_schedule("cosine", 0.1, min_lr=v), "schedule.min_lr", valid)
for value, engine_value, valid in [("legacy", "legacy", True), ("sometimes", "sometimes", False),
                                   ("1", 1, False)]:
    case([f"trainer.shuffle={value}"], "trainer.shuffle",
         lambda v=engine_value: _trainer(shuffle=v), "trainer.shuffle", valid)
case(["trainer.log_every=often"], "trainer.log_every", lambda: _trainer(log_every="often"),
     "trainer.log_every", False)
case(["trainer.mode=up"], "trainer.mode", lambda: _trainer(mode="up"), "trainer.mode", False)
case(["schedule=reduce_on_plateau", "schedule.mode=up"], "schedule.mode",
     lambda: get_schedule("reduce_on_plateau", 0.1, mode="up"), "schedule.mode", False)
case(["trainer.train_metrics=never"], "trainer.train_metrics",
     lambda: _trainer(train_metrics="never"), "trainer.train_metrics", False)
for value, valid in [("edenau_loss", True), ("f1", False)]:
    case([f"trainer.extra_metrics=[{value}]"], "trainer.extra_metrics",
         lambda v=value: _trainer(metrics=[v]), "trainer.metrics", valid)
for value, valid in [("float32", True), ("float16", False)]:
    case([f"trainer.dtype={value}"], "trainer.dtype",
         lambda v=value: MLP([2, 1], ["identity"], "mse", dtype=v), "dtype", valid)
for value, valid in [(-1, False), (2**32 - 1, True), (2**32, False)]:
    case([f"seed={value}"], "seed", lambda v=value: _trainer(seed=v), "trainer.seed", valid)

# the new architecture and optimizer keys
def _mlp(**kwargs):
    return MLP([2, 3, 3, 2], ["relu", "relu", "softmax"], "softmax_cross_entropy", **kwargs)


for value, valid in [(-0.1, False), (0, True), (0.999, True), (1.0, False)]:
    case([f"architecture.dropout={value}"], "architecture.dropout",
         lambda v=value: _mlp(dropout=v), "architecture.dropout", valid)
    case([f"architecture.dropout=[0.1,{value}]"], "architecture.dropout",
         lambda v=value: _mlp(dropout=[0.1, v]), "architecture.dropout", valid)
    case([f"architecture.label_smoothing={value}"], "architecture.label_smoothing",
         lambda v=value: _mlp(label_smoothing=v), "architecture.label_smoothing", valid)
for value, valid in [(0, False), (1e-3, True), (1.0, True), (1.01, False)]:
    case([f"architecture.norm_momentum={value}"], "architecture.norm_momentum",
         lambda v=value: _mlp(norm="batch", norm_momentum=v), "architecture.norm_momentum",
         valid)
for value, valid in [(0, False), (1e-9, True)]:
    case([f"architecture.norm_eps={value}"], "architecture.norm_eps",
         lambda v=value: _mlp(norm="layer", norm_eps=v), "architecture.norm_eps", valid)
    case([f"optimizer.max_norm={value}"], "optimizer.max_norm",
         lambda v=value: _optimizer("sgd", max_norm=v), "optimizer.max_norm", valid)
for value, valid in [("batch", True), ("layer", True), ("none", True), ("group", False)]:
    case([f"architecture.norm={value}"], "architecture.norm",
         lambda v=value: _mlp(norm=v), "architecture.norm", valid)
for value, valid in [(-1e-3, False), (0, True), (0.5, True)]:
    case(["optimizer=adamw", f"optimizer.l1={value}"], "optimizer.l1",
         lambda v=value: _optimizer("adamw", l1=v), "optimizer.l1", valid)
# (a bool key: the schema turns "1" into true before any rule sees it)
case(["optimizer.decay_biases=false"], "optimizer.decay_biases",
     lambda: _optimizer("sgd", decay_biases=False), "optimizer.decay_biases", True)


def _verdict(call):
    try:
        call()
    except ConfigError as error:
        return False, str(error)
    return True, None


@pytest.mark.parametrize(("overrides", "key", "engine", "engine_key", "valid"), CASES)
def test_config_and_engine_agree_on_each_value(overrides, key, engine, engine_key, valid):
    config_ok, config_message = _verdict(lambda: validate(compose_train(*overrides)))
    engine_ok, engine_message = _verdict(engine)
    assert (config_ok, engine_ok) == (valid, valid), (config_message, engine_message)
    if not valid:  # each path names the setting in its own terms
        assert config_message.startswith(f"{key}:"), config_message
        assert engine_message.startswith(f"{engine_key}:"), engine_message


def test_the_config_names_parameters_the_chosen_component_does_not_take():
    with pytest.raises(ConfigError, match=r"^architecture\.activation_params: 'relu' has no "
                                          r"parameter 'alpha'; valid parameters: \(none\)$"):
        validate(compose_train("+architecture.activation_params.alpha=0.1"))
    with pytest.raises(ConfigError, match=r"^initializer: 'he_normal' has no parameter 'std'"):
        validate(compose_train("initializer=normal", "initializer.name=he_normal"))
    with pytest.raises(ConfigError, match=r"^optimizer: 'adam' has no parameter 'momentum'"):
        validate(compose_train("optimizer=sgd", "optimizer.name=adam"))
