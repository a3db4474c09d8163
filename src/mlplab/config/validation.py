"""What a composed config means, checked before any run starts.

Hydra's schema already guarantees keys and types; these checks catch values that are
well-typed but meaningless (lr = -1, an activation that does not exist, a sigmoid output
under a softmax loss). The rules are not written here: each engine component declares the
rules of its parameters (`constraints`, see `mlplab.constraints`), and this module checks
the config's values against the rules of the component the config names, reporting the
config key. Each failure is one `ConfigError` line that names the key and what would be
valid, so the CLI can print it and exit 2 before an MLflow run exists.
`validate_for_dataset` adds the checks that need the loaded data (batch size vs number of
training samples, loss vs task, which metrics exist to monitor).
"""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf

from mlplab.config.schema import InitializerConfig
from mlplab.constraints import (
    FLOAT_DTYPE,
    SEED,
    Choice,
    ListOf,
    Nullable,
    check,
    check_keywords,
    fail,
)
from mlplab.errors import ConfigError, choices
from mlplab.nn.activations import ACTIVATIONS
from mlplab.nn.dropout import dropout_rates
from mlplab.nn.initializers import INITIALIZERS
from mlplab.nn.losses import LOSSES, check_output_activation
from mlplab.nn.model import LAYER_SIZE, MLP
from mlplab.nn.optimizers import COMMON_KWARGS, OPTIMIZERS
from mlplab.nn.schedules import SCHEDULES
from mlplab.nn.threads import BLAS_THREADS
from mlplab.training import EarlyStopping, Trainer
from mlplab.training.evaluation import CLASSIFICATION_TASKS, SPLITS, metric_keys, metric_names

# Rules of keys that only the config has (the engine takes their meaning, not their value).
BIAS_MODES = Choice(("zeros", "same", "constant"))
LOGGERS = Choice(("mlflow", "none"))
# Initializer keys that are not parameters of the weight scheme (`std`, `a`, ... are).
INITIALIZER_KEYS = tuple(f.name for f in dataclasses.fields(InitializerConfig))
# Task -> (output activation, loss) used when the architecture leaves them null.
TASK_DEFAULTS = {
    "regression": ("identity", "mse"),
    "binary": ("sigmoid", "binary_cross_entropy"),
    "multiclass": ("softmax", "softmax_cross_entropy"),
    "multilabel": ("sigmoid", "binary_cross_entropy"),
}
# The architecture keys that are MLP arguments of the same name (rules in MLP.constraints).
MLP_KEYS = ("dropout", "norm", "norm_momentum", "norm_eps", "label_smoothing")
SMOOTHED_LOSSES = ("binary_cross_entropy", "softmax_cross_entropy")


def _check(key: str, value, constraint):
    """A config value against an engine rule, in the config's words ("unknown value")."""
    return check(key, value, constraint, noun="value")


def _under(prefix: str):
    """Message names of a component's parameters: the config keys under `prefix`."""
    return lambda name: f"{prefix}.{name}"


def _params(node, skip=()) -> dict:
    return {key: node[key] for key in node if key not in skip}


def check_schema_keys(node, path: str = "") -> None:
    """Reject keys a schema does not declare.

    Hydra lets `+group.key=value` add keys even to structured nodes; a key nothing reads
    would be silently ignored, so refuse it here with the valid keys."""
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    keys = [k for k in node.keys() if path or k != "hydra"]  # Hydra's node, if composed in
    if schema is not None and dataclasses.is_dataclass(schema):
        declared = [f.name for f in dataclasses.fields(schema)]
        for key in keys:
            if key not in declared:
                where = f"{path}.{key}" if path else str(key)
                raise ConfigError(f"{where}: unknown key; valid keys: {choices(declared)}")
    for key in keys:
        # A missing value has no keys yet, and an interpolation is checked where it points
        # (reading it would resolve it).
        if OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key):
            continue
        child = node[key]
        if isinstance(child, DictConfig):  # (not a None node: that reads as None)
            check_schema_keys(child, f"{path}.{key}" if path else str(key))


def _check_architecture(arch) -> None:
    _check("architecture.hidden", arch.hidden, ListOf(LAYER_SIZE, example="[64, 32]"))
    _check("architecture.activation", arch.activation, Choice(ACTIVATIONS))
    hidden, params = ACTIVATIONS[arch.activation], dict(arch.activation_params)
    check_keywords(hidden.__init__, params, "architecture.activation_params", arch.activation)
    hidden.check_params(params, _under("architecture.activation_params"))
    if arch.output_activation is not None:
        _check("architecture.output_activation", arch.output_activation, Choice(ACTIVATIONS))
    if arch.loss is not None:
        _check("architecture.loss", arch.loss, Choice(LOSSES))
    if arch.loss is not None and arch.output_activation is not None:
        check_output_activation(LOSSES[arch.loss], ACTIVATIONS[arch.output_activation],
                                "architecture.output_activation", given=arch.output_activation)
    values = {key: OmegaConf.to_container(arch[key]) if OmegaConf.is_list(arch[key])
              else arch[key] for key in MLP_KEYS}
    MLP.check_params(values, _under("architecture"))
    dropout_rates(values["dropout"], len(arch.hidden))


def _check_initializer(init) -> None:
    _check("initializer.name", init.name, Choice(INITIALIZERS))
    _check("initializer.bias", init.bias, BIAS_MODES)
    # the constant bias is drawn by the `constant` scheme, whose rule for its value applies
    _check("initializer.bias_value", init.bias_value,
           INITIALIZERS["constant"].constraints["value"])
    scheme, params = INITIALIZERS[init.name], _params(init, skip=INITIALIZER_KEYS)
    check_keywords(scheme.__init__, params, "initializer", init.name)
    scheme.check_params(params, _under("initializer"))


def _check_optimizer(opt) -> None:
    _check("optimizer.name", opt.name, Choice(OPTIMIZERS))
    cls, params = OPTIMIZERS[opt.name], _params(opt, skip=("name",))
    if "betas" in params:  # the config spells Adam's beta1 and beta2 as one pair, PyTorch's way
        beta1, beta2 = _check("optimizer.betas", opt.betas,
                              ListOf(cls.constraints["beta1"], length=2, example="[0.9, 0.999]"))
        del params["betas"]
        params.update(beta1=beta1, beta2=beta2)
    check_keywords(cls.__init__, params, "optimizer", opt.name, extra=COMMON_KWARGS)
    cls.check_params(params, _under("optimizer"))


def _check_schedule(schedule, lr) -> None:
    _check("schedule.name", schedule.name, Choice(SCHEDULES))
    cls = SCHEDULES[schedule.name]
    # the schedule starts from optimizer.lr, which the optimizer's checks have just passed
    params = {**_params(schedule, skip=("name",)), "base_lr": lr}
    cls.check_params(params, lambda name: "optimizer.lr" if name == "base_lr"
                     else f"schedule.{name}")


# trainer keys -> the Trainer's argument names, where they differ
TRAINER_ARGUMENTS = {"extra_metrics": "metrics"}


def _check_trainer(trainer) -> None:
    names = {TRAINER_ARGUMENTS.get(key, key): key for key in trainer}
    values = {name: trainer[key] for name, key in names.items() if name in Trainer.constraints}
    Trainer.check_params(values, lambda name: f"trainer.{names[name]}")
    _check("trainer.dtype", trainer.dtype, FLOAT_DTYPE)
    split, _, metric = str(trainer.monitor).partition("_")
    if split not in SPLITS or not metric:
        fail("trainer.monitor", trainer.monitor,
             f"<split>_<metric> with split in {', '.join(SPLITS)}, e.g. test_loss")
    stopping = _params(trainer.early_stopping, skip=("enabled",))
    EarlyStopping.check_params(stopping, _under("trainer.early_stopping"))
    _check("trainer.blas_threads", trainer.blas_threads, Nullable(BLAS_THREADS))


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one line: key and valid values) unless every value makes sense."""
    check_schema_keys(cfg)
    _check("seed", cfg.seed, SEED)
    _check_architecture(cfg.architecture)
    _check_initializer(cfg.initializer)
    _check_optimizer(cfg.optimizer)
    _check_schedule(cfg.schedule, cfg.optimizer.lr)
    _check_trainer(cfg.trainer)
    _check("logger.name", cfg.logger.name, LOGGERS)
    if cfg.trainer.resume is not None and cfg.logger.name == "none":
        raise ConfigError("trainer.resume: resuming reads the run's checkpoints from MLflow; "
                          "valid choices: logger=mlflow with trainer.resume=<run id>, or null")


def output_head(cfg: DictConfig, task: str) -> tuple[str, str]:
    """(output activation, loss) of this run: the config's where set, else fitted to the
    task. A loss that needs a particular output activation dictates it; a chosen output
    activation keeps the task's loss when they fit, and mse otherwise."""
    default_activation, default_loss = TASK_DEFAULTS[task]
    activation, loss = cfg.architecture.output_activation, cfg.architecture.loss
    if activation is None:
        activation = (loss and LOSSES[loss].output_activation) or default_activation
    if loss is None:
        needed = LOSSES[default_loss].output_activation
        loss = default_loss if needed in (None, _canonical(activation)) else "mse"
    return activation, loss


def _canonical(activation: str) -> str:
    return ACTIVATIONS[activation].name


def validate_for_dataset(cfg: DictConfig, dataset) -> None:
    """The checks that need the data: batch size, loss vs task, the monitored metric."""
    batch_size = cfg.trainer.batch_size
    if batch_size is not None and batch_size > dataset.n_train:
        fail("trainer.batch_size", batch_size,
             f"at most the number of training samples ({dataset.n_train}) or null")
    activation, loss = output_head(cfg, dataset.task)
    classifier = dataset.task in CLASSIFICATION_TASKS
    if loss == "binary_cross_entropy" and not classifier:
        raise ConfigError(f"architecture.loss: 'binary_cross_entropy' needs a classification "
                          f"dataset, {dataset.name!r} is {dataset.task}; valid choices: "
                          f"{choices(_losses_for(dataset.task))}")
    if loss.startswith("softmax") and dataset.task not in ("binary", "multiclass"):
        raise ConfigError(f"architecture.loss: {loss!r} needs class labels, {dataset.name!r} "
                          f"is {dataset.task}; valid choices: "
                          f"{choices(_losses_for(dataset.task))}")
    _check_with_loss(cfg, dataset, loss)
    if dataset.task == "binary" and _canonical(activation) == "softmax":
        # One output unit for two classes; a softmax over one unit is constant.
        raise ConfigError(f"architecture.output_activation: 'softmax' needs a multiclass "
                          f"dataset, {dataset.name!r} is binary (one output unit); valid "
                          "choices: identity, sigmoid")
    splits = ["train", "test"] + (["val"] if dataset.n_val else [])
    reported = metric_keys(splits, metric_names(classifier, cfg.trainer.extra_metrics))
    _check("trainer.monitor", cfg.trainer.monitor, Choice(reported))


def _check_with_loss(cfg: DictConfig, dataset, loss: str) -> None:
    """Label smoothing needs a cross-entropy; batch norm needs 2 samples in every batch."""
    arch, batch_size = cfg.architecture, cfg.trainer.batch_size
    if arch.label_smoothing and loss not in SMOOTHED_LOSSES:
        fail("architecture.label_smoothing", arch.label_smoothing,
             f"0 with loss {loss!r} (label smoothing applies to {choices(SMOOTHED_LOSSES)})")
    if arch.norm == "batch" and batch_size is not None and batch_size < dataset.n_train and (
            batch_size == 1 or dataset.n_train % batch_size == 1):
        fail("trainer.batch_size", batch_size,
             f"a size leaving no training batch of 1 sample ({dataset.n_train} training "
             "samples), which batch norm cannot normalize; or architecture.norm=layer")


def _losses_for(task: str) -> list[str]:
    return {"regression": ["mse", "mse_half"],
            "binary": ["binary_cross_entropy", "mse", "softmax_cross_entropy"],
            "multiclass": ["softmax_cross_entropy", "binary_cross_entropy", "softmax_mse_nojac",
                           "mse"],
            "multilabel": ["binary_cross_entropy", "mse"]}[task]
