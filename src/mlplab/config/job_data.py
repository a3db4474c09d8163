"""A job's dataset from its composed config: the one mapping of config keys to the
arguments of `mlplab.data.load_dataset`.

The job loads its data with it (`mlplab.job.build.load_data`), and so does preflight,
which loads each distinct dataset of a sweep once to check every job against it before
anything runs. It lives in the config layer because both may import it: preflight may
not import the job layer, which sits below it.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from mlplab.data import load_dataset


def dataset_arguments(cfg: DictConfig) -> tuple[str, dict]:
    """The dataset's name and the keyword arguments `load_dataset` takes for this config:
    the dataset node's own keys, with `data_dir`, `seed` and `trainer.dtype`."""
    params = OmegaConf.to_container(cfg.dataset, resolve=True)
    name = params.pop("name")
    return name, {"data_dir": cfg.data_dir, "seed": cfg.seed, "dtype": cfg.trainer.dtype,
                  **params}


def load_job_data(cfg: DictConfig):
    """The dataset this config trains on."""
    name, arguments = dataset_arguments(cfg)
    return load_dataset(name, **arguments)


def same_shapes_key(cfg: DictConfig) -> str:
    """Equal for two configs whose datasets have the same task and the same numbers of
    samples, features and outputs: the dataset's arguments without the run seed (which
    draws which samples, not how many) and the dtype (their precision)."""
    name, arguments = dataset_arguments(cfg)
    kept = {k: v for k, v in arguments.items() if k not in ("seed", "dtype")}
    return json.dumps([name, kept], sort_keys=True, default=str)
