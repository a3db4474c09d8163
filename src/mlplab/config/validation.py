"""What a composed config means, checked before any run starts.

Hydra's schema already guarantees keys and types; these checks catch values that are
well-typed but meaningless (lr = -1, an activation that does not exist, a sigmoid output
under a softmax loss). Each failure is one `ConfigError` line that names the key and what
would be valid, so the CLI can print it and exit 2 before an MLflow run exists.
`validate_for_dataset` adds the checks that need the loaded data (batch size vs number of
training samples, loss vs task, which metrics exist to monitor).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from mlplab.errors import ConfigError, choices

DTYPES = ("float32", "float64")
BIAS_MODES = ("zeros", "same", "constant")
TRAIN_METRICS = ("auto", "pre_update", "post_update", "running")
MODES = ("min", "max")
LOGGERS = ("mlflow", "none")
SPLITS = ("train", "test", "val")
# Task -> (output activation, loss) used when the architecture leaves them null.
TASK_DEFAULTS = {
    "regression": ("identity", "mse"),
    "binary": ("sigmoid", "binary_cross_entropy"),
    "multiclass": ("softmax", "softmax_cross_entropy"),
}


def _fail(key: str, value, rule: str):
    raise ConfigError(f"{key}: invalid value {value!r}; must be {rule}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def _positive(key, value, *, allow_zero=False, optional=False):
    if value is None and optional:
        return
    if not _is_number(value) or value < 0 or (value == 0 and not allow_zero):
        _fail(key, value, "a finite number " + (">= 0" if allow_zero else "> 0")
              + (" or null" if optional else ""))


def _int_at_least(key, value, minimum, *, optional=False):
    if value is None and optional:
        return
    if not _is_int(value) or value < minimum:
        _fail(key, value, f"an integer >= {minimum}" + (" or null" if optional else ""))


def _fraction(key, value):
    if not _is_number(value) or not 0 <= value < 1:
        _fail(key, value, "a number in [0, 1)")


def _choice(key, value, valid):
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}; valid choices: {choices(valid)}")


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


def _check_architecture(arch, registries) -> None:
    activations, losses = registries["activations"], registries["losses"]
    hidden = arch.hidden
    if not all(_is_int(h) and h >= 1 for h in hidden):
        _fail("architecture.hidden", list(hidden), "a list of integers >= 1, e.g. [64, 32]")
    _choice("architecture.activation", arch.activation, activations)
    if arch.output_activation is not None:
        _choice("architecture.output_activation", arch.output_activation, activations)
    if arch.loss is not None:
        _choice("architecture.loss", arch.loss, losses)
    if arch.loss is not None and arch.output_activation is not None:
        needed = losses[arch.loss].output_activation
        given = activations[arch.output_activation].name
        if needed is not None and given != needed:
            raise ConfigError(
                f"architecture.output_activation: {arch.output_activation!r} cannot be used "
                f"with loss {arch.loss!r}; valid choices: {needed}")


def _check_initializer(init, registries) -> None:
    _choice("initializer.name", init.name, registries["initializers"])
    _choice("initializer.bias", init.bias, BIAS_MODES)
    if not _is_number(init.bias_value):
        _fail("initializer.bias_value", init.bias_value, "a finite number")
    for key in ("std", "a", "gain"):
        if key in init:
            _positive(f"initializer.{key}", init[key])


def _check_optimizer(opt, registries) -> None:
    _choice("optimizer.name", opt.name, registries["optimizers"])
    _positive("optimizer.lr", opt.lr)
    _positive("optimizer.weight_decay", opt.weight_decay, allow_zero=True)
    _positive("optimizer.clip_norm", opt.clip_norm, optional=True)
    _positive("optimizer.clip_value", opt.clip_value, optional=True)
    for key in ("momentum", "alpha"):
        if key in opt:
            _fraction(f"optimizer.{key}", opt[key])
    for key in ("eps", "lr_decay", "initial_accumulator_value"):
        if key in opt:
            _positive(f"optimizer.{key}", opt[key], allow_zero=True)
    if "betas" in opt:
        betas = list(opt.betas)
        if len(betas) != 2 or not all(_is_number(b) and 0 <= b < 1 for b in betas):
            _fail("optimizer.betas", betas, "two numbers in [0, 1), e.g. [0.9, 0.999]")


def _check_schedule(schedule, registries, epochs) -> None:
    _choice("schedule.name", schedule.name, registries["schedules"])
    if "gamma" in schedule:
        _positive("schedule.gamma", schedule.gamma)
    if "step_size" in schedule:
        _int_at_least("schedule.step_size", schedule.step_size, 1)
    if "factor" in schedule and not (_is_number(schedule.factor) and 0 < schedule.factor < 1):
        _fail("schedule.factor", schedule.factor, "a number in (0, 1)")
    if "patience" in schedule:
        _int_at_least("schedule.patience", schedule.patience, 0)
    if "mode" in schedule:
        _choice("schedule.mode", schedule.mode, MODES)
    for key in ("min_lr", "min_delta"):
        if key in schedule:
            _positive(f"schedule.{key}", schedule[key], allow_zero=True)
    if "warmup_epochs" in schedule:
        _int_at_least("schedule.epochs", schedule.epochs, 1)
        _int_at_least("schedule.warmup_epochs", schedule.warmup_epochs, 0)
        if schedule.warmup_epochs >= schedule.epochs:
            _fail("schedule.warmup_epochs", schedule.warmup_epochs,
                  f"smaller than schedule.epochs ({schedule.epochs})")


def _check_trainer(trainer, metrics) -> None:
    _int_at_least("trainer.epochs", trainer.epochs, 1)
    _int_at_least("trainer.batch_size", trainer.batch_size, 1, optional=True)
    _choice("trainer.dtype", trainer.dtype, DTYPES)
    if trainer.shuffle not in (True, False, "legacy"):
        _fail("trainer.shuffle", trainer.shuffle, "true, false or legacy")
    log_every = trainer.log_every
    if log_every != "auto" and not (_is_int(log_every) and log_every >= 1):
        _fail("trainer.log_every", log_every, "'auto' or an integer >= 1")
    _choice("trainer.train_metrics", trainer.train_metrics, TRAIN_METRICS)
    _choice("trainer.mode", trainer.mode, MODES)
    split, _, metric = str(trainer.monitor).partition("_")
    if split not in SPLITS or not metric:
        _fail("trainer.monitor", trainer.monitor,
              "<split>_<metric> with split in train, test, val, e.g. test_loss")
    stopping = trainer.early_stopping
    _int_at_least("trainer.early_stopping.patience", stopping.patience, 1)
    _positive("trainer.early_stopping.min_delta", stopping.min_delta, allow_zero=True)
    _int_at_least("trainer.checkpoint_every", trainer.checkpoint_every, 1, optional=True)
    _int_at_least("trainer.blas_threads", trainer.blas_threads, 1, optional=True)
    for name in trainer.extra_metrics:
        _choice("trainer.extra_metrics", name, metrics)


def _registries() -> dict[str, Mapping]:
    # Imported here: the schema module must stay importable without the engine loaded.
    from mlplab.nn.activations import ACTIVATIONS
    from mlplab.nn.initializers import INITIALIZERS
    from mlplab.nn.losses import LOSSES
    from mlplab.nn.optimizers import OPTIMIZERS
    from mlplab.nn.schedules import SCHEDULES

    return {"activations": ACTIVATIONS, "losses": LOSSES, "initializers": INITIALIZERS,
            "optimizers": OPTIMIZERS, "schedules": SCHEDULES}


def metric_names() -> tuple[str, ...]:
    """Metrics `trainer.extra_metrics` may name: the functions of `mlplab.nn.metrics`."""
    from mlplab.nn import metrics

    return tuple(sorted(name for name, value in vars(metrics).items()
                        if inspect.isfunction(value) and value.__module__ == metrics.__name__
                        and not name.startswith("_")))


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one line: key and valid values) unless every value makes sense."""
    check_schema_keys(cfg)
    if not (_is_int(cfg.seed) and 0 <= cfg.seed < 2**32):
        _fail("seed", cfg.seed, "an integer in [0, 2**32)")
    registries = _registries()
    _check_architecture(cfg.architecture, registries)
    _check_initializer(cfg.initializer, registries)
    _check_optimizer(cfg.optimizer, registries)
    _check_schedule(cfg.schedule, registries, cfg.trainer.epochs)
    _check_trainer(cfg.trainer, metric_names())
    _choice("logger.name", cfg.logger.name, LOGGERS)
    if cfg.trainer.resume is not None and cfg.logger.name == "none":
        raise ConfigError("trainer.resume: resuming reads the run's checkpoints from MLflow; "
                          "valid choices: logger=mlflow with trainer.resume=<run id>, or null")


def output_head(cfg: DictConfig, task: str) -> tuple[str, str]:
    """(output activation, loss) of this run: the config's where set, else fitted to the
    task. A loss that needs a particular output activation dictates it; a chosen output
    activation keeps the task's loss when they fit, and mse otherwise."""
    from mlplab.nn.losses import LOSSES

    default_activation, default_loss = TASK_DEFAULTS[task]
    activation, loss = cfg.architecture.output_activation, cfg.architecture.loss
    if activation is None:
        activation = (loss and LOSSES[loss].output_activation) or default_activation
    if loss is None:
        needed = LOSSES[default_loss].output_activation
        loss = default_loss if needed in (None, _canonical(activation)) else "mse"
    return activation, loss


def _canonical(activation: str) -> str:
    from mlplab.nn.activations import ACTIVATIONS

    return ACTIVATIONS[activation].name


def validate_for_dataset(cfg: DictConfig, dataset) -> None:
    """The checks that need the data: batch size, loss vs task, the monitored metric."""
    batch_size = cfg.trainer.batch_size
    if batch_size is not None and batch_size > dataset.n_train:
        _fail("trainer.batch_size", batch_size,
              f"at most the number of training samples ({dataset.n_train}) or null")
    activation, loss = output_head(cfg, dataset.task)
    classifier = dataset.task in ("binary", "multiclass")
    if loss == "binary_cross_entropy" and dataset.task != "binary":
        raise ConfigError(f"architecture.loss: 'binary_cross_entropy' needs a binary dataset, "
                          f"{dataset.name!r} is {dataset.task}; valid choices: "
                          f"{choices(_losses_for(dataset.task))}")
    if loss.startswith("softmax") and not classifier:
        raise ConfigError(f"architecture.loss: {loss!r} needs class labels, {dataset.name!r} "
                          f"is {dataset.task}; valid choices: mse, mse_half")
    if dataset.task == "binary" and _canonical(activation) == "softmax":
        # One output unit for two classes; a softmax over one unit is constant.
        raise ConfigError(f"architecture.output_activation: 'softmax' needs a multiclass "
                          f"dataset, {dataset.name!r} is binary (one output unit); valid "
                          "choices: identity, sigmoid")
    splits = ["train", "test"] + (["val"] if dataset.n_val else [])
    names = ["loss"] + (["accuracy"] if classifier else []) + list(cfg.trainer.extra_metrics)
    available = [f"{s}_{n}" for s in splits for n in names]
    _choice("trainer.monitor", cfg.trainer.monitor, available)


def _losses_for(task: str) -> list[str]:
    return {"regression": ["mse", "mse_half"],
            "binary": ["binary_cross_entropy", "mse", "softmax_cross_entropy"],
            "multiclass": ["softmax_cross_entropy", "softmax_mse_nojac", "mse"]}[task]
