"""How a run writes its files: `config.yaml` as OmegaConf writes it, and artifacts copied
straight into a local artifact location (the same files MLflow's upload would leave)."""

from __future__ import annotations

import yaml
from omegaconf import OmegaConf

from mlplab.config import compose_train
from mlplab.tracking.store import copy_artifacts, local_artifact_dir
from mlplab.yaml_text import config_yaml

AWKWARD = {"s": "yes", "n": "1", "f": "1e-3", "null": "null", "u": "héllo ✓", "e": "",
           "inf": "inf", "nan": "NaN", "dot": "1.", "colon": "a: b", "long": "word " * 40,
           "nested": {"list": [1, 2.5, None, True, "off"], "empty": {}, "none": []}}


def test_config_yaml_is_the_text_omegaconf_writes():
    for config in (OmegaConf.to_container(compose_train("experiment=quick_moons"), resolve=True),
                   OmegaConf.to_container(compose_train("dataset=sum_diff"), resolve=True),
                   AWKWARD):
        text = config_yaml(config)
        assert text == OmegaConf.to_yaml(OmegaConf.create(config))
        assert yaml.safe_load(text) == config


def test_local_artifact_locations_are_recognised():
    assert local_artifact_dir("file:///tmp/a%20b/artifacts").as_posix() == "/tmp/a b/artifacts"
    for remote in ("s3://bucket/x", "mlflow-artifacts:/1/abc", "http://h/x", None, ""):
        assert local_artifact_dir(remote) is None


def test_local_copies_land_where_an_upload_would(tmp_path):
    source = tmp_path / "staging"
    (source / "weights").mkdir(parents=True)
    (source / "weights" / "final.npz").write_bytes(b"npz")
    (source / "config.yaml").write_text("a: 1\n")
    root = tmp_path / "artifacts"
    uploads = []
    copy_artifacts(lambda *a: uploads.append(a), source, "model", root.as_uri())
    copy_artifacts(lambda *a: uploads.append(a), source, None, root.as_uri())
    assert uploads == []
    assert (root / "model" / "weights" / "final.npz").read_bytes() == b"npz"
    assert (root / "config.yaml").read_text() == "a: 1\n"
    copy_artifacts(lambda *a: uploads.append(a), source, "x", "s3://bucket/run")
    assert uploads == [(str(source), "x")]
