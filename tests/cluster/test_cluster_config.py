"""What needs no cluster: `hydra/launcher=submitit_slurm` is mlplab's launcher, and a
`postgresql://` store without its driver or its server is one line naming what to do."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from cluster_helpers import ROOT, cli_env
from hydra import compose, initialize_config_dir

from mlplab.config import conf_dir


def test_submitit_slurm_is_mlplabs_launcher_with_upstreams_keys():
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        cfg = compose("train", ["hydra/launcher=submitit_slurm",
                                "hydra.launcher.partition=cpu", "hydra.launcher.account=lab"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == ("hydra_plugins.mlplab_slurm_launcher.mlplab_slurm_launcher"
                                 ".MlplabSlurmLauncher")
    assert (launcher.partition, launcher.account) == ("cpu", "lab")
    assert launcher.max_num_timeout == 3  # requeues on time-outs: jobs resume
    assert launcher.signal_delay_s == 120


def _train(*overrides: str, block: str | None = None) -> subprocess.CompletedProcess:
    """`mlplab train` in a subprocess; `block` names a module made unimportable there (as
    Python's own import system does for a `None` entry in sys.modules)."""
    prelude = f"import sys; sys.modules[{block!r}] = None; " if block else "import sys; "
    code = prelude + "from mlplab.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "train", *overrides], cwd=ROOT,
                          env=cli_env(), capture_output=True, text=True, timeout=120)


def test_postgresql_store_without_its_driver_names_the_cluster_extra():
    proc = _train("logger.tracking_uri=postgresql://mlplab:secret@127.0.0.1:5432/mlflow",
                  block="psycopg")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("mlplab: error: logger.tracking_uri: ")
    assert "'psycopg'" in line and "[cluster]" in line
    assert "secret" not in line  # the password is not repeated


def test_postgresql_store_with_another_driver_names_that_driver():
    proc = _train("logger.tracking_uri=postgresql+pg8000://u@127.0.0.1:5432/mlflow",
                  block="pg8000")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "'pg8000'" in line


# With the slow tests, which .ci/run runs after installing the `cluster` extra.
@pytest.mark.slow
@pytest.mark.cluster
def test_unreachable_postgresql_server_is_one_line():
    pytest.importorskip("psycopg", reason="needs the cluster extra: pip install -e '.[cluster]'")
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _train(f"logger.tracking_uri=postgresql://mlplab@127.0.0.1:{port}/mlflow")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert f"cannot reach the PostgreSQL server at 127.0.0.1:{port}" in line
