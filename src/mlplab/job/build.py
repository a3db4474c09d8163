"""Engine objects from a composed config: the dataset, the model, the optimizer, the
schedule and the trainer. The one place where config keys become engine arguments."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from mlplab.config.job_data import load_job_data
from mlplab.config.validation import INITIALIZER_KEYS, output_head
from mlplab.nn import MLP
from mlplab.nn.activations import get_activation
from mlplab.nn.initializers import get_initializer
from mlplab.nn.optimizers import get_optimizer
from mlplab.nn.schedules import get_schedule
from mlplab.training import Trainer


def load_data(cfg: DictConfig):
    """The job's dataset (the mapping of `dataset.*` keys is shared with preflight)."""
    return load_job_data(cfg)


def build_model(cfg: DictConfig, dataset):
    """The MLP for this dataset: its input width, the hidden layers, the task's output."""
    arch, init = cfg.architecture, cfg.initializer
    out_activation, loss = output_head(cfg, dataset.task)
    hidden_activation = get_activation(arch.activation, **arch.activation_params)
    scheme = {k: init[k] for k in init if k not in INITIALIZER_KEYS}  # std, a, gain, ...
    bias = {"zeros": "zeros", "same": "same"}.get(init.bias) or get_initializer(
        "constant", value=init.bias_value)
    dropout = arch.dropout
    return MLP([dataset.n_features, *arch.hidden, dataset.n_outputs],
               [hidden_activation] * len(arch.hidden) + [out_activation], loss,
               dtype=cfg.trainer.dtype, weight_init=get_initializer(init.name, **scheme),
               bias_init=bias, seed=cfg.seed, rng="legacy" if init.legacy else None,
               dropout=list(dropout) if OmegaConf.is_list(dropout) else dropout,
               norm=arch.norm, norm_momentum=arch.norm_momentum, norm_eps=arch.norm_eps,
               label_smoothing=arch.label_smoothing)


def build_optimizer(cfg: DictConfig, model):
    settings = OmegaConf.to_container(cfg.optimizer, resolve=True)
    name, lr = settings.pop("name"), settings.pop("lr")
    if "betas" in settings:
        settings["beta1"], settings["beta2"] = settings.pop("betas")
    return get_optimizer(name, model.params, lr, param_names=model.param_names, **settings)


def build_schedule(cfg: DictConfig):
    settings = OmegaConf.to_container(cfg.schedule, resolve=True)
    return get_schedule(settings.pop("name"), cfg.optimizer.lr, **settings)


def make_trainer(cfg: DictConfig, model, optimizer, callbacks):
    settings = cfg.trainer
    stopping = OmegaConf.to_container(settings.early_stopping)
    stopping.update(monitor=settings.monitor, mode=settings.mode)
    return Trainer(model, optimizer, epochs=settings.epochs, batch_size=settings.batch_size,
                   shuffle=settings.shuffle, seed=cfg.seed, log_every=settings.log_every,
                   schedule=build_schedule(cfg), early_stopping=stopping,
                   checkpoint_every=settings.checkpoint_every,
                   train_metrics=settings.train_metrics, metrics=list(settings.extra_metrics),
                   monitor=settings.monitor, mode=settings.mode, progress=settings.progress,
                   callbacks=callbacks)
