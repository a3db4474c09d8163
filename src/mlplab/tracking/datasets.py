"""A run's dataset as an MLflow dataset input: what the UI's Dataset column shows.

One input per run, named after the dataset, whose digest covers every split's arrays as the
model saw them (dtype, shape and bytes, after scaling), so two runs show the same digest
exactly when they trained and were evaluated on the same numbers. A user's file
(`dataset=file`) is digested by its sha256 instead (as much of it as the store keeps),
so runs on different versions of a file are told apart at a glance. Its source says where
the data came from (the files read, or the generator and its settings), its profile the
split sizes, its schema the feature and target shapes.

Built from plain values, without `mlflow.data` (whose dataset classes import pandas and
hash again what is hashed here once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

DIGEST_LENGTH = 8  # as MLflow's own dataset digests
FILE_DIGEST_LENGTH = 36  # the longest digest MLflow stores; the full sha256 is a param
CONTEXT_TAG = "mlflow.data.context"
CONTEXT = "training"  # one input for every split; the profile has their sizes


def array_digest(arrays: Mapping[str, np.ndarray | None]) -> str:
    """Hex digest of named arrays: each name, dtype, shape and the bytes, in order."""
    digest = hashlib.sha256()
    for name, array in arrays.items():
        if array is None:
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:DIGEST_LENGTH]


def split_arrays(dataset) -> dict[str, np.ndarray | None]:
    return {f"{part}_{side}": array for part, (X, y) in dataset.splits().items()
            for side, array in (("X", X), ("y", y))}


def dataset_source(dataset, settings: Mapping | None) -> tuple[str, str]:
    """(source type, source JSON): the directory a loader read, else the generator with the
    run's `dataset.*` settings (as MLflow's code source records them: string tags)."""
    info = getattr(dataset, "info", None) or {}
    if info.get("path"):
        return "local", json.dumps({"uri": str(info["path"])})
    if info.get("directory"):
        return "local", json.dumps({"uri": str(info["directory"])})
    tags = {"mlflow.source.name": "mlplab", "loader": dataset.name}
    tags.update({str(k): str(v) for k, v in (settings or {}).items() if k != "name"})
    return "code", json.dumps({"tags": tags})


def _tensor_schema(array: np.ndarray) -> str:
    spec = {"type": "tensor", "tensor-spec": {"dtype": array.dtype.name,
                                              "shape": [-1, *array.shape[1:]]}}
    return json.dumps([spec])


def dataset_entity(dataset, settings: Mapping | None = None):
    """The `mlflow.entities.Dataset` of `dataset` (a `mlplab.data.Dataset`); `settings`
    are the run's `dataset.*` config values, recorded as the source of generated data."""
    from mlflow.entities import Dataset as MlflowDataset

    source_type, source = dataset_source(dataset, settings)
    sizes = {"train": dataset.n_train, "val": dataset.n_val, "test": dataset.n_test}
    profile = {"num_rows": sum(sizes.values()), **{f"{k}_rows": v for k, v in sizes.items()},
               "features": dataset.n_features, "task": dataset.task}
    if dataset.n_classes:
        profile["classes"] = int(dataset.n_classes)
    schema = {"mlflow_tensorspec": {"features": _tensor_schema(dataset.X_train),
                                    "targets": _tensor_schema(dataset.y_train)}}
    sha256 = (getattr(dataset, "info", None) or {}).get("sha256")
    digest = sha256[:FILE_DIGEST_LENGTH] if sha256 else array_digest(split_arrays(dataset))
    return MlflowDataset(name=dataset.name, digest=digest,
                         source_type=source_type, source=source, schema=json.dumps(schema),
                         profile=json.dumps(profile))


def log_dataset_input(client, run_id: str, dataset, settings: Mapping | None = None):
    """Log `dataset` as the run's input; returns the MLflow dataset entity."""
    from mlflow.entities import DatasetInput, InputTag

    entity = dataset_entity(dataset, settings)
    client.log_inputs(run_id, datasets=[DatasetInput(entity, [InputTag(CONTEXT_TAG, CONTEXT)])])
    return entity
