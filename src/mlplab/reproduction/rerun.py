"""Re-run a logged run from its `config.yaml` artifact and compare the final metrics.

The logged config is treated as data, never as code: it is parsed with `yaml.safe_load`,
keys starting with `_` (Hydra's `_target_` and friends) and `${...}` interpolations are
refused, and it is merged onto a config composed from mlplab's own groups (chosen by the
logged `name`s), so the structured schema and `validate` check every key and value
against mlplab's registries before anything runs. Nothing the file names is imported.
"""

from __future__ import annotations

import copy
import math
import tempfile
from dataclasses import dataclass

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from mlplab.config.compose import apply_value_overrides, compose_job, hydra_error_line
from mlplab.errors import ConfigError, DataError
from mlplab.job import JobContext, run_job
from mlplab.job.build import build_model, load_data
from mlplab.tracking.store import get_client
from mlplab.training.trainer import resolve_log_every

# Groups whose option is picked by the logged `name` (their schema depends on it).
NAMED_GROUPS = ("dataset", "initializer", "optimizer", "schedule")


class LoggedRun:
    """Read access to one logged run: final and per-step metrics, weights, predictions."""

    def __init__(self, client, run_id: str, cfg: DictConfig | None = None):
        self.client, self.run_id, self.cfg = client, run_id, cfg
        self.run = fetch_run(client, run_id)
        self._histories: dict[str, dict[int, float]] = {}

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.run.data.metrics)

    def final(self, key: str) -> float:
        if key not in self.run.data.metrics:
            raise LookupError(key)
        return float(self.run.data.metrics[key])

    def at(self, key: str, step: int) -> float:
        if key not in self._histories:
            points = self.client.get_metric_history(self.run_id, key)
            self._histories[key] = {m.step: m.value for m in points}
        if step not in self._histories[key]:
            raise LookupError(f"{key} at step {step}")
        return float(self._histories[key][step])

    def weights(self) -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="mlplab-weights-") as scratch:
            path = self.client.download_artifacts(self.run_id, "weights/final.npz", scratch)
            with np.load(path, allow_pickle=False) as saved:
                return {k: saved[k] for k in saved.files}

    def predict_raw(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs in the data's own units for raw (features, samples) inputs, from the
        logged final weights and the scalers of the run's (re-built, seeded) dataset."""
        np.random.seed(self.cfg.seed)  # noqa: NPY002 (as run_job, before the data)
        dataset = load_data(self.cfg)
        model = build_model(self.cfg, dataset)
        model.load_state_dict(self.weights())
        samples = np.asarray(inputs, dtype=float).T
        if dataset.x_scaler is not None:
            samples = dataset.x_scaler.transform(samples)
        outputs = model.predict(np.ascontiguousarray(samples.T)).T
        return dataset.to_original_units(outputs).T


def fetch_run(client, run_id: str):
    # Imported here, for start-up speed: MLflow is imported only once a store is used.
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"RUN_ID: no run {run_id!r} in {client.tracking_uri}; valid choices: "
                          "the run ids `mlplab runs` lists") from None


def check_plain_data(node, path: str = "") -> None:
    """Refuse what could make a config do more than hold values."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str) or key.startswith("_"):
                raise DataError(f"config.yaml: key {where!r} is not allowed in a logged config "
                                "(only plain mlplab keys)")
            check_plain_data(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_plain_data(value, f"{path}[{i}]")
    elif isinstance(node, str) and "${" in node:
        raise DataError(f"config.yaml: {path} holds an interpolation {node!r}; a logged config "
                        "must be fully resolved")
    elif node is not None and not isinstance(node, bool | int | float | str):
        raise DataError(f"config.yaml: {path} has a value of type {type(node).__name__}")


def logged_config(client, run_id: str) -> dict:
    from mlflow.exceptions import MlflowException  # (as in fetch_run)

    with tempfile.TemporaryDirectory(prefix="mlplab-config-") as scratch:
        try:
            path = client.download_artifacts(run_id, "config.yaml", scratch)
        except (MlflowException, OSError):
            raise DataError(f"run {run_id}: no config.yaml artifact to re-run from") from None
        with open(path, encoding="utf-8") as handle:
            try:
                data = yaml.safe_load(handle)
            except yaml.YAMLError as error:
                raise DataError(f"run {run_id}: config.yaml is not valid YAML: "
                                f"{str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DataError(f"run {run_id}: config.yaml does not hold a mapping")
    data.pop("hydra", None)
    check_plain_data(data)
    return data


def config_from_logged(logged: dict, overrides: list[str]) -> DictConfig:
    """Compose mlplab's config for the logged group names, then merge the logged values."""
    choices = []
    for group in NAMED_GROUPS:
        name = (logged.get(group) or {}).get("name")
        if not isinstance(name, str):
            raise DataError(f"config.yaml: {group}.name is missing")
        choices.append(f"{group}={name}")
    cfg = compose_job(*choices, "logger=mlflow")
    values = copy.deepcopy(logged)
    # Where to log is decided by this command; what to log (plots, model) follows the run.
    logger = values.pop("logger", None) or {}
    values["logger"] = {k: v for k, v in logger.items() if k not in ("name", "tracking_uri")}
    tags = values.pop("tags", None) or {}  # free-form: the schema has no keys for them
    try:
        cfg = OmegaConf.merge(cfg, values)
        with open_dict(cfg):
            cfg.tags = {str(k): str(v) for k, v in tags.items()}
    except Exception as error:  # OmegaConf's key/type errors name the key
        raise ConfigError(f"config.yaml: {hydra_error_line(error)}") from None
    apply_value_overrides(cfg, overrides)
    return cfg


@dataclass
class MetricComparison:
    key: str
    original: float | None
    reproduced: float | None

    @property
    def matches(self) -> bool:
        a, b = self.original, self.reproduced
        if a is None or b is None:
            return False
        return a == b or (math.isnan(a) and math.isnan(b))


def compare_final(original: dict[str, float], reproduced: dict[str, float]):
    keys = sorted(set(original) | set(reproduced))
    return [MetricComparison(k, original.get(k), reproduced.get(k)) for k in keys]


def refuse_sweep_parent(run) -> None:
    """A sweep's parent run trained nothing: say so, and name the child to re-run."""
    tags = run.data.tags
    if tags.get("mlplab.role") != "sweep":
        return
    best = tags.get("best_run_id")
    hint = (f"its best child is {tags.get('best_run_name') or best} ({best}): "
            f"mlplab reproduce {best}" if best else "it has no best child to re-run")
    raise ConfigError(f"RUN_ID: run {run.info.run_id} is a sweep's parent run, which trained "
                      f"nothing itself; {hint}; valid choices: a run that trained (see "
                      f"`mlplab runs --sweep {run.info.run_id}`)")


def pruned_epoch(original: LoggedRun) -> int | None:
    """The epoch a pruned trial stopped at (its last logged step); None if not pruned."""
    if original.run.data.tags.get("pruned") != "true" or not original.metrics:
        return None
    key = original.run.data.tags.get("objective_metric") or sorted(original.metrics)[0]
    return max(m.step for m in original.client.get_metric_history(original.run_id, key))


def rerun(run_id: str, overrides: list[str], tracking_uri: str | None) -> int:
    """`mlplab reproduce RUN_ID [OVERRIDES]`: a new run from the logged config, compared.

    A pruned trial is re-run to the epoch where the pruner stopped it (no pruner runs now),
    and compared there; a sweep's parent is refused, naming its best child."""
    client = get_client(tracking_uri)
    original = LoggedRun(client, run_id)
    refuse_sweep_parent(original.run)
    cfg = config_from_logged(logged_config(client, run_id), overrides)
    tags = original.run.data.tags
    stopped_at = pruned_epoch(original)
    with open_dict(cfg):
        cfg.logger.tracking_uri = client.tracking_uri
        cfg.trainer.resume = None  # a reproduction starts from scratch
        cfg.trial.number = cfg.trial.study_name = cfg.trial.storage = None  # no Optuna study
        cfg.run_name = f"{tags.get('mlflow.runName', run_id)} (reproduced)"
        cfg.tags = {**cfg.tags, "reproduces": run_id}
        if stopped_at is not None:
            # The same evaluations as the original (their cadence follows the epoch count
            # when "auto"); schedules keep the epoch count they were logged with.
            cfg.trainer.log_every = resolve_log_every(cfg.trainer.log_every, cfg.trainer.epochs)
            cfg.trainer.epochs = stopped_at
            print(f"run {run_id} was pruned at epoch {stopped_at}: re-running it to that epoch "
                  "and comparing there")
    context = JobContext(preset=tags.get("preset", "default"),
                         overrides=[*tags.get("overrides", "").split(), *overrides])
    outcome = run_job(cfg, context)
    reproduced = LoggedRun(client, outcome.run_id)
    rows = compare_final(original.metrics, reproduced.metrics)
    print(f"run {run_id} re-run as {outcome.run_id} ({outcome.status}) in "
          f"{client.tracking_uri}")
    width = max([len(r.key) for r in rows] + [6])
    print(f"{'metric':<{width}}  {'logged':>22}  {'reproduced':>22}  match")
    for row in rows:
        shown = [("-" if v is None else repr(v)) for v in (row.original, row.reproduced)]
        print(f"{row.key:<{width}}  {shown[0]:>22}  {shown[1]:>22}  "
              f"{'✓' if row.matches else '✗'}")
    same = all(r.matches for r in rows) and bool(rows)
    print("all final metrics identical" if same else "final metrics differ")
    return 0 if same else 1
