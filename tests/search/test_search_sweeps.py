"""End-to-end sweeps of the toy app: pruning, resume after a kill, seed groups.

Every scenario runs under the basic launcher and under joblib with two trials per batch.
The toy objective is deterministic and its optimum known (x=1, opt=b; see toy_app.py), so
"the best configuration" is checked against that optimum, not against a recorded run.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections import defaultdict

import pytest
from optuna.trial import TrialState
from sweep_helpers import (
    complete_trials_so_far,
    load_study,
    read_log,
    run_sweep,
    summary,
    sweep_command,
    toy_env,
)
from toy_app import toy_loss

SPACE = ["x=range(-2,4)", "opt=choice(a,b,c)"]
OPTIMUM = {"x": 1, "opt": "b"}
# A seeded TPE that finds the optimum in 8 trials with and without pruning, in batches of
# one or two (so do seeds 1 and 3: the choice is not a fluke).
TPE = ["hydra.sweeper.n_trials=8", "hydra.sweeper.sampler.seed=2",
       "hydra.sweeper.sampler.n_startup_trials=4"]
MEDIAN = ["hydra.sweeper.pruner.name=median", "hydra.sweeper.pruner.n_startup_trials=2",
          "hydra.sweeper.pruner.n_warmup_steps=1"]
LAUNCHERS = ["basic", "joblib"]


def _epochs(records) -> int:
    return sum(1 for r in records if "epoch" in r)


def _results(records) -> list[dict]:
    return [r for r in records if "result" in r]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_pruning_saves_epochs_and_keeps_the_best(tmp_path, launcher):
    plain, pruned = tmp_path / "plain", tmp_path / "pruned"
    plain.mkdir(), pruned.mkdir()
    run_sweep(pruned, launcher, *SPACE, *TPE, *MEDIAN)
    assert summary(pruned)["best_trial"]["params"] == OPTIMUM
    if launcher == "basic":
        run_sweep(plain, launcher, *SPACE, *TPE)
        assert summary(plain)["best_trial"]["params"] == OPTIMUM
        assert _epochs(read_log(plain)) == 8 * 10
    # Without a pruner every trial runs its 10 epochs (checked above under one launcher).
    assert _epochs(read_log(pruned)) < 8 * 10

    study = load_study(pruned)
    pruned_trials = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned_trials and len(study.trials) == 8
    by_trial = defaultdict(list)
    for record in read_log(pruned):
        by_trial[record["trial"]].append(record)
    for trial in pruned_trials:
        epochs_run = _epochs(by_trial[trial.number])
        # The job stopped at the epoch the pruner chose, and said why.
        assert epochs_run == trial.user_attrs["pruned_at"] < 10
        assert _results(by_trial[trial.number])[0]["stop_reason"] == "pruned"
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.value == pytest.approx(toy_loss(trial.params["x"], trial.params["opt"], 0, 10))
    assert summary(pruned)["n_trials"]["pruned"] == len(pruned_trials)


def _count(study, *states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _wait_for_complete_trials(tmp_path, process, n: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if process.poll() is not None:
            log = (tmp_path / "killed_sweep.log").read_text()[-3000:]
            raise AssertionError(f"the sweep ended before it could be killed:\n{log}")
        if complete_trials_so_far(tmp_path) >= n:
            return
    raise AssertionError(f"no {n} complete trials within 90 s")


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal's Ctrl-C finds it. A shell that starts a command in
    the background (`cmd &`, as a CI script may) sets SIGINT to ignored, which the sweep
    would inherit, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted(study) -> dict[int, dict]:
    """Trials a kill cut short: left RUNNING (SIGKILL) or marked FAIL on the way out."""
    return {t.number: t.params for t in study.trials
            if t.state == TrialState.RUNNING
            or (t.state == TrialState.FAIL and t.user_attrs.get("interrupted"))}


@pytest.mark.parametrize("launcher, signum", [
    ("basic", signal.SIGKILL), ("joblib", signal.SIGKILL), ("basic", signal.SIGINT),
    ("basic", signal.SIGTERM)],
    ids=["basic-SIGKILL", "joblib-SIGKILL", "basic-SIGINT", "basic-SIGTERM"])
def test_killed_sweep_resumes_without_repeating_finished_trials(tmp_path, launcher, signum):
    # Enough trials that the signal lands mid-sweep even when the machine is busy: the kill
    # comes after the third complete trial, and a trial takes ~0.5 s.
    n_trials = 16
    args = [*SPACE, f"hydra.sweeper.n_trials={n_trials}", "hydra.sweeper.sampler.seed=0",
            "epoch_seconds=0.04"]
    output = (tmp_path / "killed_sweep.log").open("w")
    process = subprocess.Popen(sweep_command(tmp_path, launcher, *args), env=toy_env(),
                               cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=_default_sigint)
    try:
        _wait_for_complete_trials(tmp_path, process, 3)
    finally:
        if signum == signal.SIGKILL:
            os.killpg(process.pid, signum)  # the sweeper and its workers die at once
        else:
            assert process.poll() is None, "the sweep ended before the signal was sent"
            os.kill(process.pid, signum)  # as Ctrl-C or `kill PID` would
        status = process.wait(timeout=60)
    if signum == signal.SIGTERM:  # the running trial finishes, then exit as signalled
        assert status == 143
    else:
        assert status != 0

    before = load_study(tmp_path)
    complete_before = {t.number for t in before.get_trials(states=(TrialState.COMPLETE,))}
    interrupted = _interrupted(before)
    assert 3 <= len(complete_before) < n_trials
    if signum != signal.SIGKILL:  # the sweeper cleaned up on its way out
        assert _count(before, TrialState.RUNNING) == 0
    if signum == signal.SIGTERM:
        assert _count(before, TrialState.FAIL) == 0
    log_lines_before = len(read_log(tmp_path))

    run_sweep(tmp_path, launcher, *args)

    after = load_study(tmp_path)
    assert _count(after, TrialState.COMPLETE, TrialState.PRUNED) == n_trials
    assert _count(after, TrialState.RUNNING, TrialState.WAITING) == 0
    resumed_jobs = _results(read_log(tmp_path)[log_lines_before:])
    assert len(resumed_jobs) == n_trials - len(complete_before)
    assert not {job["trial"] for job in resumed_jobs} & complete_before
    # A trial the kill interrupted ends FAIL and its configuration runs again, once (unless
    # the kill came while its params were still being sampled: then it never ran).
    trials = {t.number: t for t in after.trials}
    for number, params in interrupted.items():
        assert trials[number].state == TrialState.FAIL
        retries = [t for t in after.trials if t.user_attrs.get("retry_of") == number]
        if set(params) == {"x", "opt"}:
            assert len(retries) == 1 and retries[0].params == params
            assert retries[0].state == TrialState.COMPLETE
        else:
            assert retries == []


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_seed_groups_average_the_seeds(tmp_path, launcher):
    n_trials = 2 if launcher == "joblib" else 3  # one batch of 2 x 3 jobs under joblib
    run_sweep(tmp_path, launcher, *SPACE, f"hydra.sweeper.n_trials={n_trials}",
              "hydra.sweeper.sampler.name=random", "hydra.sweeper.sampler.seed=0",
              "hydra.sweeper.seeds=[0,1,2]", "epochs=3")
    jobs = _results(read_log(tmp_path))
    assert len(jobs) == n_trials * 3
    groups = defaultdict(list)
    for job in jobs:
        groups[job["group"]].append(job)
    assert sorted(groups) == [f"toy#{n}" for n in range(n_trials)]
    study = load_study(tmp_path)
    for trial in study.trials:
        members = groups[f"toy#{trial.number}"]
        assert sorted(m["seed"] for m in members) == [0, 1, 2]
        assert {(m["x"], m["opt"]) for m in members} == {(trial.params["x"], trial.params["opt"])}
        values = [m["result"] for m in members]
        assert trial.value == pytest.approx(statistics.fmean(values))
        assert trial.user_attrs["objective_std"] == pytest.approx(statistics.stdev(values))
        assert trial.user_attrs["seed_values"] == {str(m["seed"]): m["result"] for m in members}


def test_seed_groups_with_pruning_run_other_seeds_only_for_survivors(tmp_path):
    run_sweep(tmp_path, "basic", *SPACE, "hydra.sweeper.n_trials=6",
              "hydra.sweeper.sampler.name=random", "hydra.sweeper.sampler.seed=1",
              "hydra.sweeper.seeds=[0,1]", *MEDIAN, "epochs=4")
    study = load_study(tmp_path)
    jobs = _results(read_log(tmp_path))
    pruned = {t.number for t in study.get_trials(states=(TrialState.PRUNED,))}
    assert pruned, "the scenario must prune something to test anything"
    for trial in study.trials:
        seeds = sorted(j["seed"] for j in jobs if j["trial"] == trial.number)
        assert seeds == ([0] if trial.number in pruned else [0, 1])


def test_grid_sampler_visits_each_point_once_and_stops(tmp_path):
    run_sweep(tmp_path, "basic", "x=range(2)", "opt=choice(a,b)", "hydra.sweeper.n_trials=10",
              "hydra.sweeper.sampler.name=grid", "epochs=2")
    study = load_study(tmp_path)
    points = sorted((t.params["x"], t.params["opt"]) for t in study.trials)
    assert points == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]


def test_failed_trials_do_not_count_and_too_many_stop_the_sweep(tmp_path):
    # opt=c returns NaN: those trials FAIL and the sweep goes on until 2 trials complete.
    run_sweep(tmp_path, "basic", "x=choice(0)", "opt=choice(a,c)", "nan_opt=c", "epochs=2",
              "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.name=random",
              "hydra.sweeper.sampler.seed=0", "hydra.sweeper.max_failures=20", study="some_fail")
    study = load_study(tmp_path, "some_fail")
    assert _count(study, TrialState.COMPLETE) == 2
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and all(t.params["opt"] == "c" for t in failed)
    # Every trial fails: the sweep gives up after max_failures instead of looping forever.
    run_sweep(tmp_path, "basic", "x=choice(0)", "opt=choice(c)", "nan_opt=c", "epochs=2",
              "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failures=2", study="all_fail")
    study = load_study(tmp_path, "all_fail")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_a_resumed_seeded_sweep_does_not_replay_its_first_draws(tmp_path):
    args = ["x=interval(-2, 4)", "opt=choice(a,b,c)", "hydra.sweeper.sampler.name=random",
            "hydra.sweeper.sampler.seed=0", "epochs=2"]
    run_sweep(tmp_path, "basic", *args, "hydra.sweeper.n_trials=2")
    run_sweep(tmp_path, "basic", *args, "hydra.sweeper.n_trials=4")  # extends the study
    xs = [t.params["x"] for t in load_study(tmp_path).trials]
    assert len(xs) == 4 and len(set(xs)) == 4  # continuous draws: a replay would repeat
