"""The Optuna sweeper behind `hydra/sweeper=mlplab_optuna` (ask/tell over Hydra launchers).

Each round asks `n_jobs` trials, turns them into job overrides (one job per seed when
`seeds` is set), hands the batch to whatever Hydra launcher is configured (basic, joblib,
submitit, ray), then tells the study COMPLETE / PRUNED / FAIL from the jobs' return values
and from what the jobs' `PruningCallback` recorded on the trials. The study is persistent:
only COMPLETE and PRUNED trials count toward `n_trials`, so running the same command again
finishes an interrupted sweep without repeating finished trials. Several sweeper
processes may share one study; `mlplab.search.workers` says how they split it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import Trial, TrialState

from mlplab.errors import ConfigError, DataError
from mlplab.multirun.sweeps import logger_enabled
from mlplab.private_api import trial_id
from mlplab.search.config import check_settings
from mlplab.search.factories import PRUNER_ATTR, make_pruner, make_sampler, pruner_settings
from mlplab.search.groups import aggregate_seed_values, trial_overrides
from mlplab.search.orphans import close_orphaned_runs
from mlplab.search.outcomes import describe_outcome, is_objective, job_outcome
from mlplab.search.pruning import KILLED_ATTR, PRUNED_AT_ATTR
from mlplab.search.space import SearchSpace, parse_search_space
from mlplab.search.study import count_done, default_storage_url, new_storage, open_study
from mlplab.search.summary import write_summary
from mlplab.search.workers import StudyWorker
from mlplab.signals import StopRequest, signal_of_killed_run, sigterm_ignored
from mlplab.tracking.store import resolve_tracking_uri
from mlplab.tracking.sweep import close_unfinished_sweep

log = logging.getLogger(__name__)


def complete_study_message(name: str, storage: str, done: int, budget: int, n_trials: int,
                           grid) -> str:
    """What re-running a finished study says: it is complete, and how to go on."""
    head = f"Optuna study {name!r} ({storage}) is complete: {done} of {budget} trials done"
    if grid is not None and budget < n_trials:  # the grid is exhausted, not the budget
        return (f"{head}, every point of its grid; nothing to run. To go on, search a wider "
                "space (a new study; or name one with hydra.sweeper.study_name=NAME)")
    return (f"{head}; nothing to run. To extend it, run the same command with "
            f"hydra.sweeper.n_trials={budget + max(1, budget // 2)} (any number above "
            f"{done}); for a fresh study, set hydra.sweeper.study_name=NAME")


class OptunaSweeperImpl(Sweeper):
    """Implementation of `MlplabOptunaSweeper` (see the module docstring)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        super().__init__()
        self.settings = OmegaConf.to_container(OmegaConf.create(dict(settings)), resolve=True)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.job_idx = 0
        self.validated = False
        self.study: optuna.Study | None = None
        self.worker: StudyWorker | None = None
        self.stop = StopRequest()

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is logged here
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # -- the sweep ----------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        """Run the sweep; see `mlplab.search.outcomes` for how signals stop it."""
        with self.stop.handling_sigterm():
            try:
                returns = self._sweep(arguments)
            except KeyboardInterrupt:
                with sigterm_ignored():
                    if self.worker is not None:
                        # Whatever this worker asked and did not tell is lost: run it again.
                        for number in list(self.worker.held):
                            self._abandon(number, requeue=True)
                    self._close_parent_run()
                raise
            finally:
                if self.worker is not None:
                    self.worker.close()
        if self.stop.signal_name is not None:
            # Not a finished sweep: skip Hydra's end-of-sweep callbacks (the parent run is
            # closed here, tagged as stopped early) and exit as a signalled command does.
            with sigterm_ignored():
                self._close_parent_run()
            raise SystemExit(self.stop.exit_status)
        return returns

    def _close_parent_run(self) -> None:
        """The sweep's MLflow parent run (if any), closed as stopped early."""
        if self.config is not None:
            close_unfinished_sweep(str(self.config.hydra.sweep.dir))

    def _sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        assert self.config is not None and self.hydra_context is not None
        s = self._validated_settings()
        params = [f"{key}={value}" for key, value in (s["params"] or {}).items()]
        space = parse_search_space(params + list(arguments), self.hydra_context.config_loader)
        if not space.params:
            raise ConfigError(
                "hydra.sweeper.params: nothing to search; give at least one key a choice(), "
                "range() or interval() (on the command line or in a sweep preset)"
            )
        grid = space.grid() if s["sampler"]["name"] == "grid" else None
        self.study_name = s["study_name"] or self._default_study_name(space, s)
        self.storage_url = s["storage"] or default_storage_url(self.study_name)
        self.pruner_settings = pruner_settings(s["pruner"])
        storage = new_storage(self.storage_url, heartbeat_interval=s["heartbeat_interval"],
                              grace_period=s["grace_period"])
        study, storage = open_study(self.study_name, self.storage_url, s["direction"],
                                    make_pruner(self.pruner_settings), storage)
        n_existing = len(study.trials)
        study.sampler = make_sampler(s["sampler"], grid, n_existing)
        study.set_user_attr(PRUNER_ATTR, self.pruner_settings)
        self.study, self.storage, self.space = study, storage, space
        self.worker = StudyWorker(study, storage, self.storage_url, set(space.params),
                                  s["heartbeat_interval"], on_requeue=self._close_runs_of)
        seeds = list(s["seeds"] or [])
        self.job_idx = n_existing * max(1, len(seeds))

        budget = s["n_trials"]
        if grid is not None:
            budget = min(budget, math.prod(len(v) for v in grid.values()))
        max_failures = s["max_failures"] if s["max_failures"] is not None else s["n_trials"]
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(
            "Optuna study %r (%s): %d of %d trials done, %s sampler, %s pruner",
            self.study_name, self.storage_url, count_done(study), budget,
            s["sampler"]["name"], self.pruner_settings["name"],
        )

        returns: list[list[JobReturn]] = []
        failures = 0
        if count_done(study) >= budget:
            log.warning(complete_study_message(self.study_name, self.storage_url,
                                               count_done(study), budget, s["n_trials"], grid))
        waiting_since = None
        while self.stop.signal_name is None and (remaining := budget - count_done(study)) > 0:
            trials = self.worker.claim(min(s["n_jobs"], remaining), space.distributions, budget)
            if not trials:  # the rest of the budget is running in other workers
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    log.info("Study %r: waiting for %d trials running in other workers",
                             self.study_name, self.worker.live_elsewhere())
                time.sleep(min(1.0, s["heartbeat_interval"]))
                continue
            waiting_since = None
            batch_returns, states = self._run_trials(trials, space, seeds)
            returns.append(batch_returns)
            failures += states.count(TrialState.FAIL)
            if failures >= max_failures:
                log.error("Stopping the sweep: %d trials failed (hydra.sweeper.max_failures=%d)",
                          failures, max_failures)
                break
        if self.stop.signal_name is not None:
            log.warning("Sweep stopped by %s; run the same command again to resume study %r",
                        self.stop.signal_name, self.study_name)
        # A run that launched nothing leaves no parent run to log on (the tracking layer
        # deletes an empty one).
        write_summary(study, sweep_dir, self.storage_url, space, log_parent=bool(returns))
        return returns

    # -- one batch ----------------------------------------------------------------------
    def _run_trials(
        self, trials: list[Trial], space: SearchSpace, seeds: list[int]
    ) -> tuple[list[JobReturn], list[TrialState]]:
        """Launch the jobs of `trials`, tell the study, return job returns and states.

        With several seeds and a pruner, the first seed of every trial runs first (it alone
        reports to the pruner) and the other seeds run only for trials that survived it.
        """
        told: dict[int, TrialState] = {}
        try:
            for trial in trials:
                trial.set_user_attr("overrides", self._job_overrides(trial, space, seeds, 0))
            seed_slots = list(range(max(1, len(seeds))))
            two_phase = len(seed_slots) > 1 and self.pruner_settings["name"] != "none"
            first = seed_slots[:1] if two_phase else seed_slots
            outcomes: dict[int, list[Any]] = {t.number: [] for t in trials}
            returns = self._launch(trials, first, space, seeds, outcomes)
            if two_phase:
                alive = [t for t in trials if not self._was_pruned(t)
                         and all(is_objective(v) for v in outcomes[t.number])]
                returns += self._launch(alive, seed_slots[1:], space, seeds, outcomes)
            for trial in trials:
                told[trial.number] = self._tell(trial, outcomes[trial.number], seeds)
            # A mistake in what the user typed would fail every trial alike: stop and say so.
            user_errors = [v for t in trials for v in outcomes[t.number]
                           if isinstance(v, ConfigError | DataError)]
            if user_errors:
                raise user_errors[0]
            return returns, list(told.values())
        except Exception:
            for trial in trials:  # never leave a trial RUNNING (interrupts: see `sweep`)
                if trial.number not in told:
                    self._abandon(trial.number, requeue=False)
            raise

    def _launch(self, trials, slots, space, seeds, outcomes) -> list[JobReturn]:
        jobs = [(t, slot) for t in trials for slot in slots]
        if not jobs:
            return []
        batch = [self._job_overrides(t, space, seeds, slot) for t, slot in jobs]
        if not self.validated:
            # Composing catches typos in keys before any job starts; later batches differ
            # only in sampled values, so composing each of them again would only cost time.
            self.validate_batch_is_legal(batch)
            self.validated = True
        results = list(self.launcher.launch(batch, initial_job_idx=self.job_idx))
        self.job_idx += len(batch)
        for (trial, _), result in zip(jobs, results, strict=True):
            outcomes[trial.number].append(job_outcome(result))
        return results

    def _job_overrides(self, trial: Trial, space: SearchSpace, seeds: list[int], slot: int):
        reports = slot == 0  # only one job per trial reports intermediate values
        return space.job_overrides(trial.params) + trial_overrides(
            self.settings, trial.number, self.study_name,
            self.storage_url if reports else None, seeds[slot] if seeds else None)

    def _abandon(self, number: int, requeue: bool) -> None:
        """Mark this worker's unfinished trial FAIL; an interrupted one is queued again."""
        self.worker.release(number)
        ident = self.worker.trial_id(number)
        trial = self.storage.get_trial(ident)
        if trial.state.is_finished():
            return  # an interrupt arrived after the study was told
        try:
            self.storage.set_trial_user_attr(ident, "interrupted", True)
            self.study.tell(number, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            return  # another worker took it for a dead one's and queued it again
        if requeue and set(trial.params) == set(self.space.params):
            self.study.enqueue_trial(trial.params, user_attrs={"retry_of": number})

    def _was_pruned(self, trial: Trial) -> bool:
        attrs = self.storage.get_trial_user_attrs(trial_id(trial))
        return PRUNED_AT_ATTR in attrs

    def _tell(self, trial: Trial, values: list[Any], seeds: list[int]) -> TrialState:
        try:
            return self._tell_outcome(trial, values, seeds)
        except UpdateFinishedTrialError:
            # This worker went silent past the grace period (a stalled machine) and another
            # one failed the trial and queued it again: that retry stands for it.
            log.warning("Trial %d was taken over by another worker; its result is dropped",
                        trial.number)
            return TrialState.FAIL
        finally:
            self.worker.release(trial.number)

    def _tell_outcome(self, trial: Trial, values: list[Any], seeds: list[int]) -> TrialState:
        killed = self.storage.get_trial_user_attrs(trial_id(trial)).get(KILLED_ATTR)
        if killed is not None:
            self._abandon(trial.number, requeue=True)
            self.stop.request(signal_of_killed_run(killed))
            return TrialState.FAIL
        if self._was_pruned(trial):
            self.study.tell(trial, state=TrialState.PRUNED)
            log.info("Trial %d PRUNED at epoch %s %s", trial.number,
                     self.storage.get_trial_user_attrs(trial_id(trial))[PRUNED_AT_ATTR],
                     trial.params)
            return TrialState.PRUNED
        failures = [v for v in values if not is_objective(v)]
        if failures or not values:
            reason = describe_outcome(failures[0]) if failures else "no job ran"
            trial.set_user_attr("error", reason[:500])
            self.study.tell(trial, state=TrialState.FAIL)
            log.warning("Trial %d FAILED (%s) %s", trial.number, reason, trial.params)
            return TrialState.FAIL
        mean, attrs = aggregate_seed_values(values, seeds)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.study.tell(trial, mean)
        log.info("Trial %d COMPLETE value=%.6g %s", trial.number, mean, trial.params)
        return TrialState.COMPLETE

    def _close_runs_of(self, trial, worker: str | None) -> None:
        """Close the MLflow runs a dead worker left RUNNING for `trial` (see workers)."""
        if not logger_enabled(self.config):
            return
        close_orphaned_runs(
            resolve_tracking_uri(OmegaConf.select(self.config, "logger.tracking_uri")),
            str(self.config.get("experiment_name") or "default"), self.study_name,
            trial.number, worker)

    # -- settings -----------------------------------------------------------------------
    def _validated_settings(self) -> dict[str, Any]:
        s = dict(self.settings)
        if s["direction"] is None:
            # Follow the metric the app monitors, so pruning and "best" agree with it.
            assert self.config is not None
            mode = OmegaConf.select(self.config, "trainer.mode", default="min")
            s["direction"] = "maximize" if str(mode).lower() == "max" else "minimize"
        check_settings(s)
        return s

    def _default_study_name(self, space: SearchSpace, s: dict[str, Any]) -> str:
        """`<experiment_name>-<digest>`: the same command maps to the same study."""
        assert self.config is not None
        experiment = str(self.config.get("experiment_name") or "mlplab")
        identity = {
            "space": {name: repr(p.distribution) for name, p in sorted(space.params.items())},
            "fixed": sorted(space.fixed),
            "direction": s["direction"],
            "seeds": s["seeds"] or [],
        }
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
        return f"{experiment}-{digest}"
