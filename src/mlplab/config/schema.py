"""The structured-config schema: one dataclass per config group option.

Every YAML file under `conf/<group>/` starts from one of these dataclasses (its defaults
list names `/schema/<group>/<kind>@_here_`), so Hydra rejects a misspelt key or a value of
the wrong type at compose time, with the key in its message, before anything runs. The
dataset schemas are not written by hand: they are derived from the data loaders' keyword
signatures (`mlplab.config.dataset_schemas`), so a new loader argument is a new config key.

Values are checked for meaning (lr > 0, known activation names, ...) after composition by
`validate(cfg)` in `mlplab.config.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from mlplab.config.dataset_schemas import register_dataset_schemas

# ----------------------------------------------------------------------------- architecture

@dataclass
class ArchitectureConfig:
    """Hidden layer widths and activations; output width comes from the dataset.

    `output_activation`/`loss` left null are inferred from the dataset's task:
    regression -> identity + mse, binary -> sigmoid + binary_cross_entropy (1 unit),
    multiclass -> softmax + softmax_cross_entropy (one unit per class), multilabel ->
    sigmoid + binary_cross_entropy (one unit per label). `norm` (none, batch, layer) sits
    between each hidden dense layer and its activation; `dropout` (a rate, or one per
    hidden layer) after each hidden activation; `label_smoothing` for the cross-entropies.
    """

    hidden: list[int] = field(default_factory=lambda: [16, 16])
    activation: str = "relu"
    activation_params: dict[str, float] = field(default_factory=dict)
    output_activation: str | None = None
    loss: str | None = None
    label_smoothing: float = 0.0
    norm: str = "none"
    norm_momentum: float = 0.1
    norm_eps: float = 1e-5
    dropout: Any = 0.0  # a float or a list of floats


# ----------------------------------------------------------------------------- initializer

@dataclass
class InitializerConfig:
    """Weight scheme `name`; biases are `zeros`, drawn like the weights (`same`, as the
    tutorials do) or `constant` (`bias_value`). `legacy` draws from the global
    `np.random` stream after `np.random.seed(seed)`, which the tutorials' numbers need."""

    name: str = MISSING
    bias: str = "zeros"
    bias_value: float = 0.0
    legacy: bool = False


@dataclass
class NormalInitializerConfig(InitializerConfig):
    std: float = 1.0


@dataclass
class UniformInitializerConfig(InitializerConfig):
    a: float = 0.05


@dataclass
class OrthogonalInitializerConfig(InitializerConfig):
    gain: float = 1.0


# ----------------------------------------------------------------------------- optimizer

@dataclass
class OptimizerConfig:
    """Keys every optimizer takes; `weight_decay` is an L2 term added to the gradient
    (decoupled for adamw), `clip_norm`/`clip_value` clip gradients before the step, `l1`
    adds l1 * sign(p), `decay_biases: false` spares all but the weight matrices from both,
    `max_norm` caps each unit's incoming-weight norm after the step."""

    name: str = MISSING
    lr: float = 0.01
    weight_decay: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None
    l1: float = 0.0
    decay_biases: bool = True
    max_norm: float | None = None


@dataclass
class SGDConfig(OptimizerConfig):
    momentum: float = 0.0
    nesterov: bool = False


@dataclass
class MomentumConfig(OptimizerConfig):
    momentum: float = 0.9


@dataclass
class RMSPropConfig(OptimizerConfig):
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


@dataclass
class AdaGradConfig(OptimizerConfig):
    eps: float = 1e-10
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0


@dataclass
class AdamConfig(OptimizerConfig):
    """`betas` = [beta1, beta2], as PyTorch spells them."""

    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


# ----------------------------------------------------------------------------- schedule

@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated once per epoch from `optimizer.lr`."""

    name: str = MISSING


@dataclass
class StepScheduleConfig(ScheduleConfig):
    step_size: int = 10
    gamma: float = 0.1


@dataclass
class ExponentialScheduleConfig(ScheduleConfig):
    gamma: float = 0.95


@dataclass
class CosineScheduleConfig(ScheduleConfig):
    epochs: int = 100
    min_lr: float = 0.0
    warmup_epochs: int = 0


@dataclass
class ReduceOnPlateauScheduleConfig(ScheduleConfig):
    factor: float = 0.1
    patience: int = 10
    min_delta: float = 0.0
    mode: str = "min"
    min_lr: float = 0.0


# ----------------------------------------------------------------------------- trainer

@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True


@dataclass
class TrainerConfig:
    """The loop. `batch_size: null` is full batch; `shuffle` is true, false or `legacy`
    (reshuffle from the global np.random stream, as one tutorial does); `log_every: auto`
    evaluates at most about 1000 times per run; `blas_threads: null` leaves BLAS alone in a
    single run, uses one thread per job under a local parallel launcher (several jobs share
    the cores) and `hydra.launcher.cpus_per_task` threads under Slurm."""

    epochs: int = 100
    batch_size: int | None = None
    dtype: str = "float64"
    shuffle: Any = True
    log_every: Any = "auto"
    train_metrics: str = "auto"
    monitor: str = "test_loss"
    mode: str = "min"
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint_every: int | None = None
    resume: str | None = None
    blas_threads: int | None = None
    progress: bool = False
    extra_metrics: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- logger

@dataclass
class LoggerConfig:
    """`name: mlflow` logs every run to `tracking_uri` (null: `$MLFLOW_TRACKING_URI`, else
    `sqlite:///<project root>/outputs/mlflow.db`); `name: none` logs nothing."""

    name: str = "mlflow"
    tracking_uri: str | None = None
    log_model: bool = True
    plots: bool | None = None  # null: all for a single run, learning curves for sweep children
    log_checkpoints: bool = True


# ----------------------------------------------------------------------------- root

@dataclass
class TrialConfig:
    """Filled in by the Optuna sweeper for each job; all null outside such a sweep."""

    number: int | None = None
    study_name: str | None = None
    storage: str | None = None


@dataclass
class TrainConfig:
    """The primary config. Group nodes are typed by their own schemas (see above), so they
    are `Any` here; the top-level keys are checked by this class."""

    dataset: Any = MISSING
    architecture: Any = MISSING
    initializer: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    trainer: Any = MISSING
    logger: Any = MISSING
    seed: int = 0
    experiment_name: str = MISSING
    run_name: str | None = None
    data_dir: str = MISSING
    tags: dict[str, str] = field(default_factory=dict)
    trial: TrialConfig = field(default_factory=TrialConfig)


SCHEMAS: dict[str, dict[str, type]] = {
    "architecture": {"mlp": ArchitectureConfig},
    "initializer": {
        "scaled": InitializerConfig,
        "normal": NormalInitializerConfig,
        "uniform": UniformInitializerConfig,
        "orthogonal": OrthogonalInitializerConfig,
    },
    "optimizer": {
        "sgd": SGDConfig,
        "momentum": MomentumConfig,
        "rmsprop": RMSPropConfig,
        "adagrad": AdaGradConfig,
        "adam": AdamConfig,
    },
    "schedule": {
        "constant": ScheduleConfig,
        "step": StepScheduleConfig,
        "exponential": ExponentialScheduleConfig,
        "cosine": CosineScheduleConfig,
        "reduce_on_plateau": ReduceOnPlateauScheduleConfig,
    },
    "trainer": {"trainer": TrainerConfig},
    "logger": {"logger": LoggerConfig},
}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (idempotent; runs on import).

    The primary schema is `train_schema`; group schemas live under `schema/<group>/<kind>`,
    outside the user-facing groups so they are never offered as choices.
    """
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, kinds in SCHEMAS.items():
        for kind, node in kinds.items():
            store.store(group=f"schema/{group}", name=kind, node=node)
    register_dataset_schemas(store)
