"""Each wrapper of `mlplab.private_api` against the installed libraries: a library upgrade
that changes what mlplab relies on fails here, by name, instead of somewhere downstream."""

from __future__ import annotations

import os
import subprocess
import sys

import hydra
import joblib
import optuna
import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins import basic_sweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, OverrideParseException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from mlplab.config import compose_train
from mlplab.config.compose import compose_config, hydra_on_conf
from mlplab.multirun.worker_pool import joblib_arguments
from mlplab.private_api import (
    adopt_loader_class,
    apply_overrides,
    group_exists,
    hydra_args_parser,
    hydra_config_loader_class,
    hydra_errors_raised,
    joblib_parallel_arguments,
    overrides_dirname,
    parsed_element_value,
    run_mode_known,
    sweepers_compose_only,
    trial_id,
)
from mlplab.search.sweeper import OptunaSweeperImpl


def parse(*overrides: str):
    return OverridesParser.create().parse_overrides(list(overrides))


# -- composing ----------------------------------------------------------------------------

def test_applied_overrides_give_what_a_full_compose_gives():
    overrides = ("optimizer.lr=0.5", "seed=3", "+tags.owner=me", "architecture.hidden=[8,4]")
    cfg = compose_train()
    apply_overrides(parse(*overrides), cfg)
    assert OmegaConf.to_container(cfg) == OmegaConf.to_container(compose_train(*overrides))
    apply_overrides(parse("~tags.owner"), cfg)
    assert "owner" not in cfg.tags


def test_applied_overrides_keep_the_schemas_checks():
    cfg = compose_train()
    with pytest.raises(ConfigCompositionException) as wrong_type:
        apply_overrides(parse("trainer.epochs=ten"), cfg)
    assert isinstance(wrong_type.value.__cause__, ValidationError)
    assert wrong_type.value.__cause__.full_key == "trainer.epochs"
    with pytest.raises(ConfigCompositionException) as unknown:
        apply_overrides(parse("optimizer.lrr=0.1"), cfg)
    assert unknown.value.__cause__.full_key == "optimizer.lrr"
    assert cfg.trainer.epochs == compose_train().trainer.epochs  # left as it was


def test_the_loader_class_is_hydras_and_a_subclass_takes_over_its_loader():
    with hydra_on_conf():
        loader = GlobalHydra.instance().config_loader()
        assert type(loader) is hydra_config_loader_class()

        class Counting(hydra_config_loader_class()):
            calls = 0

            def load_sweep_config(self, master_config, sweep_overrides):
                Counting.calls += 1
                return super().load_sweep_config(master_config, sweep_overrides)

        twin = ConfigLoaderImpl.__new__(ConfigLoaderImpl)
        twin.__dict__.update(loader.__dict__)
        adopt_loader_class(twin, Counting)
        master = twin.load_configuration("train", overrides=[], run_mode=RunMode.MULTIRUN)
        job = twin.load_sweep_config(master, ["seed=3", "optimizer=sgd"])
    assert isinstance(twin, Counting) and Counting.calls == 1 and job.seed == 3


def test_overrides_dirname_is_the_one_hydras_compose_sets():
    overrides = ["seed=3", "optimizer.lr=0.1", "optimizer=sgd"]
    with hydra_on_conf():
        cfg = compose_config(overrides, hydra_node=True)
    assert overrides_dirname(parse(*overrides), cfg) == cfg.hydra.job.override_dirname
    assert cfg.hydra.job.override_dirname == "optimizer.lr=0.1,optimizer=sgd,seed=3"


def test_group_exists_tells_groups_from_keys():
    with hydra_on_conf():
        loader = GlobalHydra.instance().config_loader()
        assert group_exists(loader, "optimizer") and group_exists(loader, "experiment")
        assert group_exists(loader, "hydra/launcher")
        assert not group_exists(loader, "optimizer.lr")
        assert not group_exists(loader, "optimizerr")


def test_sweep_elements_become_plain_values():
    [override] = parse("k=choice('a b', [1, 'x y'], {a: 'q'}, 1.5, true, 7)")
    values = [parsed_element_value(v) for v in override.sweep_iterator()]
    assert values == ["a b", [1, "x y"], {"a": "q"}, 1.5, True, 7]
    assert type(values[0]) is str and type(values[1][1]) is str and type(values[2]["a"]) is str


# -- Hydra's entry point --------------------------------------------------------------------

def test_the_args_parser_reads_the_flags_the_cli_looks_at():
    parser = hydra_args_parser()
    parsed = parser.parse_args(["-m", "--cfg", "job", "-p", "optimizer", "--resolve",
                                "--config-name", "other", "--config-dir", "extra", "a=1", "b=2"])
    assert parsed.multirun and parsed.cfg == "job" and parsed.package == "optimizer"
    assert parsed.resolve and parsed.config_name == "other" and parsed.config_dir == "extra"
    assert parsed.overrides == ["a=1", "b=2"]
    plain = parser.parse_args([])
    assert (plain.run, plain.multirun, plain.cfg, plain.info, plain.shell_completion) == (
        False, False, None, None, False)
    assert (plain.help, plain.hydra_help, plain.config_dir, plain.experimental_rerun) == (
        False, False, None, None)
    assert parser.parse_args(["--info", "config"]).info == "config"


def tiny_app(tmp_path, body: str = "x: 1\n"):
    """A Hydra app on its own config dir that writes and logs nothing; returns (run, calls)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(body)
    calls = []

    def run(*args: str):
        saved = sys.argv
        # Both output directories in tmp_path: a sweep of one job must not write multirun/
        # into the working directory (the project's, shared by parallel test workers).
        sys.argv = ["app", *args, f"hydra.run.dir={tmp_path / 'run'}",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.output_subdir=null",
                    "hydra/job_logging=none", "hydra/hydra_logging=none"]
        try:
            hydra.main(config_path=str(tmp_path / "conf"), config_name="config",
                       version_base="1.3")(lambda cfg: calls.append(cfg.x))()
        finally:
            sys.argv = saved

    return run, calls


def test_hydra_errors_raised_lets_the_error_out_and_restores_the_environment(tmp_path, capsys):
    run, _ = tiny_app(tmp_path)
    with pytest.raises(SystemExit) as printed:  # what Hydra does on its own
        run("--cfg", "job", "y=1")
    assert printed.value.code == 1 and "Could not override 'y'" in capsys.readouterr().err
    before = os.environ.get("HYDRA_FULL_ERROR")
    with pytest.raises(ConfigCompositionException) as raised, hydra_errors_raised():
        run("--cfg", "job", "y=1")
    assert raised.value.__cause__.full_key == "y"
    assert os.environ.get("HYDRA_FULL_ERROR") == before
    with pytest.raises(OverrideParseException), hydra_errors_raised():
        run("--cfg", "job", "x=[1")


def test_hydra_composes_for_the_run_mode_only_through_get_mode(tmp_path, monkeypatch):
    run, calls = tiny_app(tmp_path)
    composed = []
    original = ConfigLoaderImpl.load_configuration

    def counting(self, *args, **kwargs):
        composed.append(kwargs.get("run_mode"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    run()
    assert composed == [RunMode.MULTIRUN, RunMode.RUN] and calls == [1]  # get_mode, the run
    composed.clear()
    with run_mode_known(None):
        run()
    assert composed == [RunMode.RUN] and calls == [1, 1]
    composed.clear()
    with run_mode_known(RunMode.MULTIRUN):  # the value is used: a sweep of one job
        run()
    assert RunMode.MULTIRUN in composed and calls == [1, 1, 1]
    composed.clear()
    run()  # restored
    assert composed == [RunMode.MULTIRUN, RunMode.RUN]


# -- sweepers -----------------------------------------------------------------------------

class RecordingLoader:
    """Hydra's config loader, noting each job a sweeper composes."""

    def __init__(self, loader):
        self.loader, self.composed = loader, []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.composed.append(list(sweep_overrides))
        return self.loader.load_sweep_config(master_config, sweep_overrides)

    def __getattr__(self, name):
        return getattr(self.loader, name)


class RecordingLauncher:
    def __init__(self):
        self.batches = []

    def launch(self, batch, initial_job_idx):
        self.batches.append([list(job) for job in batch])
        return []


def test_the_basic_sweeper_composes_only_the_jobs_that_need_it(tmp_path):
    with hydra_on_conf():
        config = compose_config([f"hydra.sweep.dir={tmp_path}"], hydra_node=True)
        loader = RecordingLoader(GlobalHydra.instance().config_loader())
        launcher = RecordingLauncher()

        def sweep():
            sweeper = basic_sweeper.BasicSweeper(max_batch_size=None)
            sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
            sweeper.config, sweeper.launcher = config, launcher
            sweeper.sweep(["seed=0,1", "logger=none"])

        sweep()  # Hydra's own behaviour: every job composed before the batch is launched
        assert loader.composed == [["seed=0", "logger=none"], ["seed=1", "logger=none"]]
        loader.composed.clear()
        with sweepers_compose_only(lambda job: "seed=1" in job):
            sweep()
        assert loader.composed == [["seed=1", "logger=none"]]
        assert launcher.batches[0] == launcher.batches[1]  # every job launched all the same
        with sweepers_compose_only(lambda job: False):
            sweep()
        assert loader.composed == [["seed=1", "logger=none"]]
    assert "validate_batch_is_legal" not in basic_sweeper.BasicSweeper.__dict__  # restored


def test_every_sweeper_class_is_covered(tmp_path):
    """mlplab's Optuna sweeper composes its first batch with the base class's method."""
    original = Sweeper.validate_batch_is_legal
    assert OptunaSweeperImpl.validate_batch_is_legal is original
    with hydra_on_conf():
        loader = RecordingLoader(GlobalHydra.instance().config_loader())
        sweeper = object.__new__(OptunaSweeperImpl)
        sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
        sweeper.config = compose_config([f"hydra.sweep.dir={tmp_path}"], hydra_node=True)
        with sweepers_compose_only(lambda job: job[0] == "seed=2"):
            sweeper.validate_batch_is_legal([["seed=1"], ["seed=2"]])
        assert loader.composed == [["seed=2"]]
    assert Sweeper.validate_batch_is_legal is original


# -- the joblib launcher ------------------------------------------------------------------

def test_joblib_arguments_are_what_the_launcher_gives_parallel(tmp_path, monkeypatch):
    from hydra_plugins.hydra_joblib_launcher import _core
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

    cfg = compose_train("hydra/launcher=joblib", "hydra.launcher.n_jobs=3",
                        "hydra.launcher.max_nbytes=1024", "hydra.launcher.backend=threading",
                        f"hydra.sweep.dir={tmp_path}", hydra_node=True)
    settings = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    settings.pop("_target_")
    given = {}

    class RecordingParallel:
        def __init__(self, **arguments):
            given.update(arguments)

        def __call__(self, tasks):
            return list(tasks)

    monkeypatch.setattr(_core, "Parallel", RecordingParallel)
    monkeypatch.setattr(_core, "configure_log", lambda *args: None)  # keep pytest's logging
    launcher = JoblibLauncher(**settings)
    launcher.config, launcher.task_function = cfg, lambda job_cfg: None
    launcher.hydra_context = HydraContext(config_loader=None, callbacks=None)
    launcher.launch([], initial_job_idx=0)
    assert given["backend"] == "loky" and given["max_nbytes"] == 1024
    assert joblib_parallel_arguments(settings) == given
    assert joblib_arguments(cfg) == given  # the worker pool's, from the whole config
    joblib.Parallel(**given)  # accepted as they are


LOKY_DRIVER = """
import os, joblib
from mlplab.private_api import loky_start_method
before = loky_start_method()
after = loky_start_method("forkserver")
parents = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(os.getppid)() for _ in range(2))
print(before, after, all(p != os.getpid() for p in parents))
"""


def test_loky_start_method_is_what_loky_pools_use():
    """None (loky's own fork+exec: workers are the process's children) until set;
    "forkserver" makes the next pool's workers children of the forkserver instead."""
    done = subprocess.run([sys.executable, "-c", LOKY_DRIVER], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "forkserver", "True"]


# -- Optuna -------------------------------------------------------------------------------

def test_trial_id_is_the_storages_id_of_live_and_frozen_trials():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="ids")
    study.ask()
    trial = study.ask()
    public = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("ids"), trial.number)
    assert trial_id(trial) == public
    frozen = study.get_trials(deepcopy=False)[1]
    assert trial_id(frozen) == public
    storage.set_trial_user_attr(trial_id(trial), "seen", True)
    assert study.get_trials()[1].user_attrs == {"seen": True}


# -- submitit's local executor ---------------------------------------------------------------

def test_local_controllers_start_with_sigint_ignored(tmp_path):
    import signal

    import submitit

    from mlplab.private_api import local_controllers_ignore_sigint

    local_controllers_ignore_sigint()
    local_controllers_ignore_sigint()  # once is enough: not wrapped twice
    from submitit.local import local

    assert local.start_controller.mlplab_sigint_ignored
    executor = submitit.LocalExecutor(folder=tmp_path)
    executor.update_parameters(timeout_min=2)
    job = executor.submit(signal.getsignal, signal.SIGINT)
    # The job's process (a child of the controller) inherited the ignored SIGINT.
    assert job.result() == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # ours is back


def test_the_input_example_is_written_as_save_model_writes_it(tmp_path):
    import json

    import pandas as pd
    from mlflow.models import Model

    from mlplab.private_api import save_model_input_example

    example = pd.DataFrame([[0.5, -1.25], [2.0, 3.0]], columns=["a", "b"])
    description = Model()
    save_model_input_example(description, example, str(tmp_path))
    info = description.saved_input_example_info
    assert info["type"] == "dataframe" and info["pandas_orient"] == "split"
    written = json.loads((tmp_path / info["artifact_path"]).read_text())
    assert written == {"columns": ["a", "b"], "data": [[0.5, -1.25], [2.0, 3.0]]}
    serving = json.loads((tmp_path / info["serving_input_path"]).read_text())
    assert serving["dataframe_split"]["data"] == written["data"]
