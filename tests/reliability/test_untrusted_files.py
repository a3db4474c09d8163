"""Files that come from elsewhere (checkpoints, weights, logged configs, models) are data:
nothing in them is unpickled, imported or instantiated. And the servers mlplab starts
listen on 127.0.0.1 unless told otherwise.

Every payload below would create a marker file if it ever ran; each test asserts the marker
is absent as well as the clear refusal.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from reliability_helpers import (
    QUICK,
    artifact_dir,
    free_port,
    metric_steps,
    run_cli,
    start_cli,
    stop_group,
    store_runs,
    train_args,
)

from polling import wait_for

SRC = Path(__file__).resolve().parents[2] / "src"


class RunsCommand:
    """Unpickling this runs `touch <marker>`: what a hostile .npz or pickle would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_npz(path: Path, marker: Path, **plain) -> Path:
    """An .npz whose `model/W1` (or `W1`) is a pickled object that runs a command."""
    arrays = {name: np.asarray(value) for name, value in plain.items()}
    arrays["model/W1"] = arrays["W1"] = np.array([RunsCommand(marker)], dtype=object)
    np.savez(path, **arrays)  # saving object arrays pickles them
    return path


# ------------------------------------------------------------------- the source itself

def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Name) else None
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            yield node, owner, name


def _sources():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in files]


def test_every_np_load_in_src_refuses_pickles():
    loads = []
    for path, tree in _sources():
        for node, owner, name in _calls(tree):
            if owner in ("np", "numpy") and name == "load":
                keywords = {k.arg: k.value for k in node.keywords}
                safe = isinstance(keywords.get("allow_pickle"), ast.Constant) and \
                    keywords["allow_pickle"].value is False
                loads.append((f"{path.relative_to(SRC)}:{node.lineno}", safe))
    assert loads, "np.load is used somewhere (checkpoints, weights): the scan found none"
    assert [where for where, safe in loads if not safe] == []


# Calls that turn data into code: unpickling, unsafe YAML, eval, dynamic imports, Hydra's
# instantiate (a logged `_target_` would name any callable).
CODE_FROM_DATA = {("pickle", "load"), ("pickle", "loads"), ("cloudpickle", "load"),
                  ("cloudpickle", "loads"), ("joblib", "load"), ("dill", "load"),
                  ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
                  ("torch", "load"), ("importlib", "import_module"), (None, "eval"),
                  (None, "exec"), (None, "__import__"), (None, "instantiate"),
                  ("utils", "instantiate"), ("hydra", "instantiate")}


def _safe_yaml_load(node) -> bool:
    """`yaml.load(..., Loader=...)` whose every loader named is a safe one (SafeLoader or
    libyaml's CSafeLoader: plain data, no Python objects)."""
    keywords = {k.arg: k.value for k in node.keywords}
    if "Loader" not in keywords:
        return False
    names = [n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(keywords["Loader"])
             if isinstance(n, ast.Name | ast.Attribute)]
    loaders = [name for name in names if name.endswith("Loader")]
    return bool(loaders) and all(name in ("SafeLoader", "CSafeLoader") for name in loaders)


def test_src_never_turns_data_into_code():
    found = [f"{path.relative_to(SRC)}:{node.lineno} {owner}.{name}"
             for path, tree in _sources() for node, owner, name in _calls(tree)
             if ((owner, name) in CODE_FROM_DATA
                 and not ((owner, name) == ("yaml", "load") and _safe_yaml_load(node)))
             or (name == "instantiate" and owner is None)]
    imports = [f"{path.relative_to(SRC)}:{node.lineno}" for path, tree in _sources()
               for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "hydra.utils" and any(a.name == "instantiate"
                                                        for a in node.names)]
    assert found == [] and imports == []


# ------------------------------------------------------------------- checkpoints, weights

def test_pickled_checkpoint_is_refused_unread(tmp_path):
    from mlplab.errors import DataError
    from mlplab.training.checkpoint import load_checkpoint

    marker = tmp_path / "ran"
    meta = json.dumps({"format": "mlplab-checkpoint-1", "epoch": 3})
    path = hostile_npz(tmp_path / "epoch_000003.npz", marker, meta=np.array(meta))
    with pytest.raises(DataError, match=r"epoch_000003\.npz: not a readable checkpoint.*"
                                        r"allow_pickle=False"):
        load_checkpoint(path)
    assert not marker.exists()


def test_pickled_model_weights_are_refused_unread(tmp_path):
    from mlplab.errors import DataError
    from mlplab.tracking.pyfunc_loader import SPEC_FORMAT, _load_pyfunc

    marker = tmp_path / "ran"
    spec = {"format": SPEC_FORMAT, "task": "binary", "dtype": "float64", "sizes": [2, 1],
            "activations": [{"name": "sigmoid"}], "feature_names": ["x0", "x1"],
            "output_columns": ["probability", "label"]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    hostile_npz(tmp_path / "weights.npz", marker, b1=np.zeros((1, 1)))
    with pytest.raises(DataError, match=r"unreadable mlplab pyfunc model.*allow_pickle=False"):
        _load_pyfunc(tmp_path)
    assert not marker.exists()


def test_model_spec_names_only_registered_activations(tmp_path):
    from mlplab.errors import ConfigError
    from mlplab.tracking.pyfunc_loader import SPEC_FORMAT, _load_pyfunc

    spec = {"format": SPEC_FORMAT, "task": "binary", "dtype": "float64", "sizes": [2, 1],
            "activations": [{"name": "os.system"}], "feature_names": ["x0", "x1"],
            "output_columns": ["probability", "label"]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    np.savez(tmp_path / "weights.npz", W1=np.zeros((1, 2)), b1=np.zeros((1, 1)))
    with pytest.raises(ConfigError, match=r"unknown activation 'os\.system'.*sigmoid"):
        _load_pyfunc(tmp_path)


# ------------------------------------------------------------------- reproduce RUN_ID

def _logged_config_variants(marker: Path) -> dict[str, str]:
    """config.yaml texts for crafted runs: (name -> YAML)."""
    from omegaconf import OmegaConf

    from mlplab.config import compose_train

    base = OmegaConf.to_container(compose_train(*QUICK, "trainer.epochs=2"), resolve=True)
    command = f"touch {marker}"

    def variant(change):
        config = json.loads(json.dumps(base))
        change(config)
        return yaml.safe_dump(config)

    return {
        "target at the top": variant(lambda c: c.update(_target_="os.system", _args_=[command])),
        "target in a group": variant(lambda c: c["optimizer"].update(
            _target_="subprocess.call", args=[command], shell=True)),
        "callable as an activation": variant(
            lambda c: c["architecture"].update(activation="os.system")),
        "callable as an optimizer": variant(lambda c: c["optimizer"].update(name="os.system")),
        "interpolation": variant(lambda c: c.update(data_dir="${oc.env:HOME}")),
        "python tag": f"seed: !!python/object/apply:os.system [{command!r}]\n",
    }


EXPECTED_REFUSAL = {
    "target at the top": r"config\.yaml: key '_(target|args)_' is not allowed",
    "target in a group": r"config\.yaml: key 'optimizer\._target_' is not allowed",
    "callable as an activation": r"architecture\.activation: unknown value 'os\.system'; "
                                 r"valid choices: .*\brelu\b",
    "callable as an optimizer": r"optimizer: unknown choice 'os\.system'; valid choices: "
                                r".*\bsgd\b",
    "interpolation": r"config\.yaml: data_dir holds an interpolation",
    "python tag": r"config\.yaml is not valid YAML",
}


@pytest.mark.timeout(300)
def test_reproduce_treats_a_logged_config_as_data(tmp_path, store):
    from mlflow import MlflowClient

    marker = tmp_path / "ran"
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.create_experiment("crafted",
                                          artifact_location=(tmp_path / "art").as_uri())
    run_ids = {}
    for name, text in _logged_config_variants(marker).items():
        run = client.create_run(experiment, run_name=name)
        staging = tmp_path / "staging" / run.info.run_id
        staging.mkdir(parents=True)
        (staging / "config.yaml").write_text(text)
        client.log_artifact(run.info.run_id, str(staging / "config.yaml"))
        client.set_terminated(run.info.run_id)
        run_ids[name] = run.info.run_id
    assert set(run_ids) == set(EXPECTED_REFUSAL)

    def reproduce(item):
        name, run_id = item
        return name, run_cli("reproduce", run_id, "--tracking-uri", f"sqlite:///{store}",
                             cwd=tmp_path)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(pool.map(reproduce, run_ids.items()))
    for name, proc in results.items():
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert re.search(EXPECTED_REFUSAL[name], lines[0]), (name, lines[0])
    assert not marker.exists()
    assert len(store_runs(store)) == len(run_ids)  # nothing was re-run


# ------------------------------------------------------------------- trainer.resume

RESUMABLE = (*QUICK, "dataset=xor", "dataset.split=ordered", "dataset.n_samples=200",
             "trainer.checkpoint_every=5", "trainer.log_every=1")


@pytest.mark.timeout(400)
def test_resume_reads_no_code_from_the_run(tmp_path, store):
    """A finished run's artifacts are tampered with: config.yaml names callables, and the
    newest checkpoint holds a pickle. Resuming refuses the checkpoint (one line, status
    2, the run stays FINISHED); without it, resuming continues from the last genuine
    checkpoint, and the logged config is never consulted at all."""
    marker = tmp_path / "ran"
    first = run_cli(*train_args(tmp_path, store, *RESUMABLE, "trainer.epochs=10"),
                    cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    ((run_id, status),) = [(r["run_id"], r["status"]) for r in store_runs(store)]
    assert status == "FINISHED"
    # Asking for no more epochs than the checkpoint holds is refused; the run stays as it was.
    same = run_cli(*train_args(tmp_path, store, *RESUMABLE, "trainer.epochs=10",
                               f"trainer.resume={run_id}"), cwd=tmp_path)
    assert same.returncode == 2 and len(same.stderr.strip().splitlines()) == 1, same.stderr
    assert re.search(r"^mlplab: error: trainer\.epochs: .*epoch 10.* must be larger",
                     same.stderr), same.stderr
    assert store_runs(store)[0]["status"] == "FINISHED"
    artifacts = artifact_dir(store, run_id)
    config = yaml.safe_load((artifacts / "config.yaml").read_text())
    config.update(_target_="os.system", _args_=[f"touch {marker}"])
    config["architecture"]["activation"] = "os.system"
    (artifacts / "config.yaml").write_text(yaml.safe_dump(config))
    meta = json.dumps({"format": "mlplab-checkpoint-1", "epoch": 10})
    hostile = hostile_npz(artifacts / "checkpoints" / "epoch_000011.npz", marker,
                          meta=np.array(meta))

    refused = run_cli(*train_args(tmp_path, store, *RESUMABLE, "trainer.epochs=20",
                                  f"trainer.resume={run_id}"), cwd=tmp_path)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-2000:]
    assert re.search(rf"{run_id}/checkpoints/epoch_000011\.npz: not a readable checkpoint "
                     r".*allow_pickle=False", lines[0]), lines[0]
    assert store_runs(store)[0]["status"] == "FINISHED"  # not turned into FAILED

    hostile.unlink()
    resumed = run_cli(*train_args(tmp_path, store, *RESUMABLE, "trainer.epochs=20",
                                  f"trainer.resume={run_id}"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert store_runs(store)[0]["status"] == "FINISHED"
    assert metric_steps(store, run_id)["train_loss"] == list(range(1, 21))
    assert not marker.exists()


# ------------------------------------------------------------------- servers

def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


@pytest.mark.timeout(300)
def test_ui_listens_on_loopback_only_by_default(tmp_path, store):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp")
    port = free_port()
    log = tmp_path / "ui.log"
    ui = start_cli("ui", "--port", str(port), "--tracking-uri", f"sqlite:///{store}",
                   cwd=tmp_path, log=log)
    try:
        wait_for(lambda: "MLflow UI for" in log.read_text() or ui.poll() is not None, 240,
                 "the UI to start")
        assert ui.poll() is None, log.read_text()[-2000:]
        addresses = _listening_addresses(port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1, little-endian hex
        assert f"http://127.0.0.1:{port}/" in log.read_text()
    finally:
        if ui.poll() is None:
            os.kill(ui.pid, signal.SIGTERM)  # the UI command stops its server with it
            try:
                ui.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        stop_group(ui)
    assert _listening_addresses(port) == set()
