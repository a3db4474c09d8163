"""Save a trained MLP as an MLflow pyfunc model, and log it as an MLflow 3 logged model.

The model directory holds data only (see `pyfunc_loader`): `data/network/weights.npz` and
`data/network/spec.json`, plus MLflow's MLmodel with `loader_module: mlplab.tracking.pyfunc_loader`,
a signature and an input example. Nothing is pickled, and no code travels inside the
artifact, so loading an untrusted model directory runs only the installed mlplab and numpy.

The input signature is one float64 tensor of shape (-1, n_features): MLflow enforces a
column signature before the model sees its input, and refuses a plain NumPy array for one
with several named columns, so `load_model(...).predict(np.array(...))` works only this way;
a DataFrame is read column by column in the order of `feature_names` (kept in the model's
metadata and in spec.json; the input example and the output columns carry the names too).

`log_pyfunc_model` logs it as a logged model named `mlp` whose source is the run (the UI's
"Models"), with the run's params, and as the run's `model` artifact (as before: scripts and
`runs:/<run_id>/model` URIs keep working). It loads with `mlflow.pyfunc.load_model` from
`models:/<model_id>` or `runs:/<run_id>/model`, and serves with
`mlflow models serve -m runs:/<run_id>/model --env-manager local` wherever mlplab is
installed (mlplab is not on PyPI, so MLflow's virtualenv/conda managers cannot rebuild it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mlplab.tracking.pyfunc_loader import (
    SPEC_FILE,
    SPEC_FORMAT,
    TASKS,
    WEIGHTS_FILE,
    NetworkPredictor,
)
from mlplab.tracking.store import copy_artifacts

LOADER_MODULE = "mlplab.tracking.pyfunc_loader"
ARTIFACT_PATH = "model"
# Not "model": MLflow 3.17 resolves `runs:/<run>/<path>` through the logged model of that
# name with a client on the process's global tracking URI, so a logged model named like the
# run's artifact would break `MlflowClient(uri).list_artifacts(run_id, "model")` for any
# other store.
LOGGED_MODEL_NAME = "mlp"


def affine_parameters(scaler, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) with scaler.transform(x) == (x - shift) / scale, per column.

    mlplab's scalers carry `shift` (None: no shift) and `scale`, read directly so the model
    repeats their arithmetic bit for bit; any other per-column affine scaler is probed
    through `inverse_transform` at 0 and 1. Either way the result is checked on a random
    batch, so a non-affine scaler is refused instead of being silently approximated.
    """
    if getattr(scaler, "scale", None) is not None and hasattr(scaler, "shift"):
        shift = 0.0 if scaler.shift is None else scaler.shift
        shift, scale = _full(shift, n_columns), _full(scaler.scale, n_columns)
    else:
        zero = np.asarray(scaler.inverse_transform(np.zeros((1, n_columns))), np.float64)[0]
        one = np.asarray(scaler.inverse_transform(np.ones((1, n_columns))), np.float64)[0]
        shift, scale = zero, one - zero
    probe = np.random.default_rng(0).normal(size=(8, n_columns)) * scale + shift
    expected = np.asarray(scaler.transform(probe), dtype=np.float64)
    if not np.allclose(expected, (probe - shift) / scale, rtol=1e-9, atol=1e-12):
        raise ValueError(f"pyfunc: scaler {scaler!r} is not affine per column; cannot export it")
    return shift, scale


def _full(value, n_columns: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n_columns,)).copy()


def output_columns(task: str, n_outputs: int, output_names=None) -> list[str]:
    """The prediction table's columns (see `pyfunc_loader` for their meaning)."""
    if task == "regression":
        return list(output_names) if output_names else [f"y{i}" for i in range(n_outputs)]
    if task == "binary":
        return ["probability", "label"]
    if task == "multilabel":
        return [f"prob_{k}" for k in range(n_outputs)] + [f"label_{k}" for k in range(n_outputs)]
    return [f"prob_{k}" for k in range(n_outputs)] + ["label"]


def build_spec_and_arrays(model, task, x_scaler=None, y_scaler=None, feature_names=None,
                          output_names=None):
    """The plain-data description of a trained network: (spec dict, arrays dict)."""
    if task not in TASKS:
        raise ValueError(f"pyfunc: task {task!r}; valid choices: {', '.join(TASKS)}")
    sizes = [int(s) for s in model.sizes]
    # parameters and batch norm's running statistics; not the dropout stream's state
    arrays = {name: np.asarray(model.state_dict()[name]) for name in model.param_names}
    arrays.update({name: np.asarray(value) for name, value in model.buffers.items()})
    if x_scaler is not None:
        arrays["x_shift"], arrays["x_scale"] = affine_parameters(x_scaler, sizes[0])
    if y_scaler is not None and task == "regression":
        arrays["y_shift"], arrays["y_scale"] = affine_parameters(y_scaler, sizes[-1])
    spec = {
        "format": SPEC_FORMAT,
        "task": task,
        "dtype": np.dtype(model.dtype).name,
        "sizes": sizes,
        "activations": [{"name": activation.name, "params": activation.params()}
                        for activation in model.activations],
        "norm": {"kind": model.norm, "eps": model.norms[0].eps} if any(model.norms) else None,
        "feature_names": list(feature_names) if feature_names else
        [f"x{i}" for i in range(sizes[0])],
        "output_columns": output_columns(task, sizes[-1], output_names),
    }
    return spec, arrays


def save_pyfunc_model(path, model, *, task, x_scaler=None, y_scaler=None, input_example=None,
                      feature_names=None, output_names=None) -> Path:
    """Write the MLflow model directory at `path` (which must not exist yet).

    `input_example`: a few rows of inputs in original units, `(n, n_features)`; the output
    schema comes from predicting on it.

    The first model of each shape (task, inputs, column names) in a process is saved by
    `mlflow.pyfunc.save_model`; the next ones of that shape are written after it (see
    `_write_like`): the same MLmodel but for its uuid, time and size, the same environment
    files, and this model's data and input example.
    """
    return _save_model_dir(Path(path), model, task=task, x_scaler=x_scaler, y_scaler=y_scaler,
                           input_example=input_example, feature_names=feature_names,
                           output_names=output_names)[0]


def _save_model_dir(path: Path, model, *, task, x_scaler, y_scaler, input_example,
                    feature_names, output_names):
    """`save_pyfunc_model`, returning (path, its MLmodel as a `mlflow.models.Model`)."""
    import pandas as pd

    spec, arrays = build_spec_and_arrays(model, task, x_scaler, y_scaler, feature_names,
                                         output_names)
    if input_example is None:
        input_example = np.zeros((1, spec["sizes"][0]))
    example = pd.DataFrame(np.asarray(input_example, dtype=np.float64),
                           columns=spec["feature_names"])
    shape = (task, spec["sizes"][0], tuple(spec["feature_names"]),
             tuple(spec["output_columns"]), tuple(_requirements()))
    if shape in _SAVED:
        return path, _write_like(_SAVED[shape], path, spec, arrays, example)
    with tempfile.TemporaryDirectory(prefix="mlplab-pyfunc-") as staging:
        data_dir = Path(staging) / "network"  # MLflow copies it to <model>/data/network
        _write_network(data_dir, spec, arrays)
        _save_with_mlflow(path, data_dir, spec, task, example)
    _SAVED[shape] = _SavedModel.read(path)
    return path, _SavedModel.description_of(_SAVED[shape])


def _write_network(directory: Path, spec: dict, arrays: dict) -> None:
    directory.mkdir(parents=True)
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=1))
    np.savez(directory / WEIGHTS_FILE, **arrays)


def _save_with_mlflow(path: Path, data_dir: Path, spec: dict, task: str, example) -> None:
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import Schema, TensorSpec

    predictor = NetworkPredictor.from_directory(data_dir)
    with warnings.catch_warnings():  # `label` is an integer column on purpose
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        outputs = infer_signature(example, predictor.predict(example)).outputs
    inputs = Schema([TensorSpec(np.dtype(np.float64), (-1, spec["sizes"][0]))])
    with _quiet("mlflow.pyfunc"):  # one INFO line per run in every sweep's output
        mlflow.pyfunc.save_model(
            str(path), loader_module=LOADER_MODULE, data_path=str(data_dir),
            signature=ModelSignature(inputs, outputs), input_example=example,
            # Listing requirements skips MLflow's inference, which re-imports the model
            # in a subprocess and costs seconds per run.
            pip_requirements=_requirements(),
            metadata={"mlplab_task": task, "feature_names": spec["feature_names"],
                      "output_columns": spec["output_columns"]})


# The first model directory of each shape this process saved through MLflow, as read back:
# what the next ones of that shape are written like. Configs and packages do not change
# while a process runs.
_SAVED: dict[tuple, _SavedModel] = {}


@dataclass(frozen=True)
class _SavedModel:
    """A model directory MLflow wrote: its MLmodel (as a dict) and its other files (the
    environment's, as bytes), its data and input example left out."""

    description: dict
    files: dict

    @classmethod
    def read(cls, path: Path) -> _SavedModel:
        description = yaml.load((path / "MLmodel").read_text(),  # plain data only
                                Loader=yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader)
        example_info = description.get("saved_input_example_info") or {}
        skipped = {"MLmodel", example_info.get("artifact_path"),
                   example_info.get("serving_input_path")}
        files = {item.name: item.read_bytes() for item in path.iterdir()
                 if item.is_file() and item.name not in skipped}
        return cls(description, files)

    def description_of(self):
        """The MLmodel as a `mlflow.models.Model` (a new object each time)."""
        from mlflow.models import Model

        return Model.from_dict(self.description)


# PyYAML's libyaml parser and emitter where PyYAML has them: MLflow reads and writes MLmodel
# files with the pure-Python ones, several milliseconds a file.
_LIBYAML = hasattr(yaml, "CSafeLoader")
_YAML_DUMPER = yaml.CSafeDumper if _LIBYAML else yaml.SafeDumper


def _write_mlmodel(description, path: Path) -> None:
    """`description.save(path)` (a `mlflow.models.Model`), through libyaml."""
    path.write_text(yaml.dump(description.to_dict(), Dumper=_YAML_DUMPER,
                              default_flow_style=False))


def _write_like(saved: _SavedModel, path: Path, spec: dict, arrays: dict, example):
    """A model directory at `path` as MLflow would write it for this model, written after
    `saved` (a model of the same shape): its data and input example as MLflow writes
    them, its size, a new uuid and creation time; the rest as in `saved`. Returns its
    MLmodel (a `mlflow.models.Model`)."""
    import datetime
    import uuid

    from mlflow.utils.file_utils import get_total_file_size

    from mlplab.private_api import save_model_input_example

    description = saved.description_of()
    path.mkdir(parents=True)
    _write_network(path / "data" / "network", spec, arrays)
    save_model_input_example(description, example, str(path))
    # What save_model counts: the data and the input example, before the MLmodel and the
    # environment files are written.
    description.model_size_bytes = get_total_file_size(str(path)) or None
    description.model_uuid = uuid.uuid4().hex
    description.utc_time_created = str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None))
    _write_mlmodel(description, path / "MLmodel")
    for name, content in saved.files.items():
        (path / name).write_bytes(content)
    return description


@contextlib.contextmanager
def _quiet(logger_name: str):
    """Raise a logger to WARNING for the duration of the block."""
    chatty = logging.getLogger(logger_name)
    level = chatty.level
    chatty.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        chatty.setLevel(level)


@functools.cache  # reading package metadata costs milliseconds; versions do not change
def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "numpy", "pandas")]


def new_logged_model(client, run_id: str, experiment_id: str | None = None, params=None,
                     step: int = 0):
    """A PENDING logged model `mlp` of run `run_id` (its output at `step`, the epoch the
    weights come from) with `params` (the run's, on the Models page): the `LoggedModel`."""
    from mlflow.entities import LoggedModelOutput

    if experiment_id is None:
        experiment_id = client.get_run(run_id).info.experiment_id
    logged = client.create_logged_model(experiment_id, name=LOGGED_MODEL_NAME, source_run_id=run_id,
                                        params=dict(params or {}), model_type="mlplab-mlp")
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step)])
    return logged


def log_pyfunc_model(client, run_id: str, model, dataset, *, artifact_path=ARTIFACT_PATH,
                     n_example_rows: int = 5, feature_names=None, output_names=None,
                     logged=None, run_artifact_uri: str | None = None) -> str:
    """Save the model of `dataset`'s task, log it as the run's logged model (`logged`,
    else a new one, see `new_logged_model`) and as the run's artifact `artifact_path`;
    returns the logged model's id, READY (FAILED if its files could not be written).

    Uses the dataset's scalers, so predictions come out in the data's original units; the
    input example is the first test rows mapped back to original units. Column names come
    from the arguments, else `dataset.info["feature_names"]` / `["target_names"]`, else
    x0.. / y0... `run_artifact_uri` (the run's artifact location, when known) saves
    asking the store for it.
    """
    from mlflow.entities import LoggedModelStatus

    info = getattr(dataset, "info", None) or {}  # loaders may name columns there
    example = dataset.X_test[:n_example_rows]
    if dataset.x_scaler is not None:
        example = dataset.x_scaler.inverse_transform(example)
    if logged is None:
        logged = new_logged_model(client, run_id)
    try:
        with tempfile.TemporaryDirectory(prefix="mlplab-model-") as scratch:
            directory, description = _save_model_dir(
                Path(scratch) / artifact_path, model, task=dataset.task,
                x_scaler=dataset.x_scaler, y_scaler=dataset.y_scaler, input_example=example,
                feature_names=feature_names or info.get("feature_names"),
                output_names=output_names or info.get("target_names"))
            # The run's copy names no logged model: MLflow would look that up (get_model_info)
            # on the process's global tracking URI, which need not be this store.
            if run_artifact_uri is None:
                run_artifact_uri = client.get_run(run_id).info.artifact_uri
            copy_artifacts(functools.partial(client.log_artifacts, run_id), directory,
                           artifact_path, run_artifact_uri)
            description.model_id = description.model_uuid = logged.model_id
            description.run_id, description.artifact_path = run_id, logged.artifact_location
            _write_mlmodel(description, directory / "MLmodel")
            copy_artifacts(lambda local, _: client.log_model_artifacts(logged.model_id, local),
                           directory, None, logged.artifact_location)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id
