"""Every use mlplab makes of a library's private API, in one place.

Hydra, OmegaConf, the joblib launcher and Optuna keep some of what mlplab needs behind
private names (`hydra._internal`, `_core`, `Override._convert_value`, `Trial._trial_id`)
or behind behaviour no document promises (which method a sweeper calls before launching,
what Hydra's entry point does with `HYDRA_FULL_ERROR`). A library upgrade may change any
of them without notice, so each is wrapped here, once, with a comment saying why the
public API does not do the job; `tests/test_private_api.py` checks each wrapper against
the installed library, and `tests/architecture/test_private_names.py` fails when another
module of mlplab touches a private name of these libraries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins import basic_sweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.types import Override
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig

# -- Hydra: composing ------------------------------------------------------------------


def apply_overrides(overrides: Sequence[Override], cfg: DictConfig) -> None:
    """Apply parsed value overrides (`key=value`, `+key=`, `++key=`, `~key`) to a composed
    config in place, with the schema's type checks, exactly as Hydra's compose does after
    merging the defaults list.

    Hydra has no public call for this: `compose` always starts from the defaults list
    again (tens of milliseconds a job, and impossible for a config merged from a logged
    file, as `mlplab reproduce RUN_ID` builds). The step it runs last is this static method.
    """
    ConfigLoaderImpl._apply_overrides_to_config(list(overrides), cfg)


def group_exists(config_loader: Any, name: str) -> bool:
    """Whether `name` (`optimizer`, `hydra/launcher`) is a config group of the search path.

    The public `ConfigLoader` interface lists a group's options but cannot tell an empty
    group from no group; its implementation's repository can, and is what Hydra's own
    override parser asks.
    """
    return bool(config_loader.repository.group_exists(name))


def parsed_element_value(element: Any) -> Any:
    """A plain Python value (str, int, float, bool, None, list, dict) from an element of a
    parsed sweep, as `Override.value()` gives for a value that is not a sweep.

    `Override.sweep_iterator()` yields the elements as parsed (a quoted string is still a
    `QuotedString`, also inside lists and dicts); the converter that `value()` applies to
    them is private.
    """
    return Override._convert_value(element)


def hydra_args_parser():
    """The argparse parser of a Hydra app's command line (`-m`, `--cfg`, `--info`, ...).

    `hydra.main` builds and uses it internally; the CLI needs the same flags, parsed the
    same way, before it hands the command line to Hydra, and Hydra exposes no public way
    to get it.
    """
    return get_args_parser()


def hydra_config_loader_class() -> type:
    """Hydra's config loader class, for mlplab's subclass that composes a sweep's jobs once
    per distinct set of group choices (`mlplab.config.sweep_jobs`).

    Every launcher composes each job through `config_loader.load_sweep_config`, from
    scratch; the loader is the only object every launcher (basic, joblib, submitit, Ray)
    carries to where jobs run, and its implementation class is private.
    """
    return ConfigLoaderImpl


def adopt_loader_class(loader: Any, cls: type) -> None:
    """Make Hydra's config loader `loader` an instance of `cls` (a subclass of its class
    that keeps its state), so that the launchers, which receive the loader from Hydra's
    internals and pickle it to their workers, use `cls`'s `load_sweep_config`. Hydra
    builds the loader itself and offers no way to pass another."""
    if not isinstance(loader, cls):
        loader.__class__ = cls


def overrides_dirname(overrides: Sequence[Override], cfg: DictConfig) -> str:
    """`hydra.job.override_dirname` of a job with these (non-hydra) overrides, built as
    Hydra's own compose builds it (the function is in its private loader module)."""
    settings = cfg.hydra.job.config.override_dirname
    return get_overrides_dirname(overrides=list(overrides),
                                 exclude_keys=list(settings.exclude_keys),
                                 item_sep=settings.item_sep, kv_sep=settings.kv_sep)


# -- Hydra: what its entry point and its sweepers do ----------------------------------


@contextlib.contextmanager
def hydra_errors_raised() -> Iterator[None]:
    """Let exceptions out of Hydra's entry point (`hydra.main`) instead of having it print
    them (a traceback, or a message and a hint over several lines) and exit with status 1.

    Hydra offers no argument for this; its documented debugging switch, the environment
    variable `HYDRA_FULL_ERROR=1`, makes its error reporting re-raise. Set only for the
    duration of the call, so that the caller can turn the error into one line.
    """
    saved = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved


@contextlib.contextmanager
def sweepers_compose_only(needs_composing: Callable[[Sequence[str]], bool]) -> Iterator[None]:
    """While active, a sweeper composes before launching a batch only the jobs for which
    `needs_composing(job_overrides)` is true.

    Hydra's sweepers compose every job of a batch in the launching process before they
    launch it (`Sweeper.validate_batch_is_legal`, called by the basic sweeper before each
    batch and by mlplab's Optuna sweeper before its first), only to fail early; there is no
    setting to skip jobs that have been composed and checked already. So the method is
    replaced, on the `Sweeper` base class and on `BasicSweeper`, and restored on exit.
    """
    # `basic_sweeper.BasicSweeper` is read now: Hydra's plugin scan re-executes its core
    # plugin modules the first time it runs, which rebinds the name to a new class. The
    # basic sweeper comes first: its lookup must give what it had, not the patched base.
    classes = [basic_sweeper.BasicSweeper, Sweeper]
    saved = [(cls, cls.__dict__.get("validate_batch_is_legal")) for cls in classes]
    for cls in classes:
        original = cls.validate_batch_is_legal

        def validate_needed(self, batch, _original=original):
            needed = [job for job in batch if needs_composing(job)]
            if needed:
                _original(self, needed)

        cls.validate_batch_is_legal = validate_needed
    try:
        yield
    finally:
        for cls, own in reversed(saved):
            if own is None:
                del cls.validate_batch_is_legal
            else:
                cls.validate_batch_is_legal = own


@contextlib.contextmanager
def run_mode_known(mode: Any) -> Iterator[None]:
    """While active, Hydra's entry point takes `mode` (a `RunMode` or None: from the
    command line's flags) as the `hydra.mode` of the config, without composing it.

    `hydra.main` composes the whole config once only to read `hydra.mode`
    (`Hydra.get_mode`) before it composes it again to run; mlplab's preflight has just
    composed the same config and read the same value. Hydra has no way to be told it.
    """
    own = Hydra.__dict__["get_mode"]
    Hydra.get_mode = lambda self, config_name, overrides: mode
    try:
        yield
    finally:
        Hydra.get_mode = own


# -- the joblib launcher ---------------------------------------------------------------


def joblib_parallel_arguments(launcher: dict) -> dict:
    """The keyword arguments the joblib launcher gives `joblib.Parallel`, from its config
    (`hydra.launcher` as a plain dict, without `_target_`).

    The launcher builds them inside its private `_core.launch` (backend forced to loky, its
    size settings turned into integers); mlplab starts the same pool ahead of the launcher
    (`mlplab.multirun.worker_pool`), so it must build exactly the same arguments.
    """
    # Imported here, for start-up speed: it imports joblib, which only a joblib sweep needs.
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    arguments = dict(launcher)
    arguments["backend"] = "loky"  # the launcher's choice, whatever the config says
    process_joblib_cfg(arguments)
    return arguments


def loky_start_method(method: str | None = None) -> str | None:
    """The start method of the loky pools this process creates from now on (`method`, when
    given, replaces it); returns the one in effect (None: loky's own, fork+exec).

    joblib's `Parallel` has no argument for it and the joblib launcher passes none; loky's
    module-level setting lives in its `backend.context`, which joblib vendors without
    exporting. mlplab sets "forkserver" for a sweep's pool (`mlplab.multirun.forkserver`).
    """
    from joblib.externals.loky.backend import context

    if method is not None:
        context.set_start_method(method, force=True)
    return context.get_start_method()


# -- MLflow ----------------------------------------------------------------------------


def save_model_input_example(description: Any, example: Any, path: str) -> None:
    """Write `example` into the model directory `path` as `mlflow.pyfunc.save_model` writes
    an input example (`input_example.json`, `serving_input_example.json`), and record it in
    `description` (a `mlflow.models.Model`): MLflow does this only inside `save_model`,
    whose other work a model of an already saved shape does not need
    (`mlplab.tracking.pyfunc`)."""
    from mlflow.models.utils import _save_example

    _save_example(description, example, path)


# -- Optuna ----------------------------------------------------------------------------


def trial_id(trial: Any) -> int:
    """The storage's id of a trial (`optuna.Trial` or `FrozenTrial`), for the storage
    calls that take one (`get_trial_user_attrs`, `set_trial_state_values`, ...).

    Optuna keeps the id private. The public route, `get_study_id_from_name` then
    `get_trial_id_from_study_id_trial_number`, costs two storage queries per call, and
    the sweeper asks after every job.
    """
    return trial._trial_id


# -- Hydra's JobReturn and submitit ------------------------------------------------------


def job_error(result: Any) -> Any:
    """What a FAILED Hydra job raised. `JobReturn.return_value` re-raises it; the SLURM
    array's report only wants to name it, so it reads the stored value."""
    return result._return_value


def requeue_signal(environment: Any) -> Any:
    """The signal SLURM sends a submitit job before its time limit (submitit's
    `JobEnvironment` knows which it asked for, and keeps that private)."""
    return environment._usr_sig()


def local_controllers_ignore_sigint() -> None:
    """From here on, the controller process submitit's local executor starts for each job
    (`submitit.local.local.start_controller`) ignores SIGINT, and so do the job's
    processes it starts, until they install their own handler (mlplab's jobs do).

    A Ctrl-C reaches the whole process group, controllers included, and a controller
    takes it as a KeyboardInterrupt: it prints a traceback and kills its job (SIGINT, then
    SIGKILL a second later), a job that was finishing its epoch and checkpoint. The
    launching process stops the jobs itself instead (`mlplab.multirun.stopping`). submitit
    offers no hook into how it starts a controller; a child inherits an ignored SIGINT,
    and Python keeps it ignored, so the controller is started with SIGINT ignored.
    """
    # Imported here, for start-up speed: only a submitit_local sweep needs submitit.
    from submitit.local import local

    start = local.start_controller
    if getattr(start, "mlplab_sigint_ignored", False):
        return

    def start_ignoring_sigint(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return start(*args, **kwargs)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return start(*args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)

    start_ignoring_sigint.mlplab_sigint_ignored = True
    local.start_controller = start_ignoring_sigint
