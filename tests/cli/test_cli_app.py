"""`run_job`: what one job returns and records, run in this process without MLflow."""

from __future__ import annotations

import math

import pytest
from threadpoolctl import threadpool_limits

from mlplab.config import compose_train
from mlplab.job.context import JobContext
from mlplab.job.run import run_job, run_name
from mlplab.nn.threads import blas_threads_in_use

QUICK = ["logger=none", "dataset.n_samples=200", "trainer.epochs=5", "trainer.log_every=1"]


def test_returns_the_monitored_metric_of_the_last_evaluation():
    outcome = run_job(compose_train(*QUICK))
    value = outcome.value
    assert outcome.status == "FINISHED" and outcome.run_id is None
    assert value == outcome.metrics["test_loss"] and math.isfinite(value)
    outcome = run_job(compose_train(*QUICK, "trainer.monitor=test_accuracy", "trainer.mode=max"))
    accuracy = outcome.value
    assert accuracy == outcome.metrics["test_accuracy"]
    assert 0.0 <= accuracy <= 1.0


def test_a_diverging_run_returns_nan_and_says_why():
    cfg = compose_train("logger=none", "dataset=sum_diff", "dataset.n_samples=200",
                        "optimizer.lr=100", "trainer.epochs=30")
    outcome = run_job(cfg)
    assert math.isnan(outcome.value)
    assert outcome.status == "FAILED"
    assert "epoch" in outcome.reason and ("nan" in outcome.reason or "inf" in outcome.reason)


def test_parallel_jobs_use_one_blas_thread():
    with threadpool_limits(limits=2, user_api="blas"):  # restored on leaving
        run_job(compose_train(*QUICK), JobContext(parallel=True))
        assert blas_threads_in_use() == 1
    with threadpool_limits(limits=2, user_api="blas"):
        run_job(compose_train(*QUICK, "trainer.blas_threads=1"))
        assert blas_threads_in_use() == 1


@pytest.mark.parametrize("overrides,expected", [
    ([], "quick_moons"),
    (["optimizer.lr=0.1", "seed=2"], "quick_moons/optimizer.lr=0.1,seed=2"),
    (["logger.tracking_uri=sqlite:///x.db", "+tags.owner=me", "trainer.progress=true",
      "architecture.hidden=[8,8]"], "quick_moons/architecture.hidden=[8,8]"),
])
def test_run_name_is_the_preset_and_the_overrides_that_change_the_model(overrides, expected):
    cfg = compose_train("experiment=quick_moons", *overrides)
    context = JobContext(preset="quick_moons", overrides=["experiment=quick_moons", *overrides])
    assert run_name(cfg, context) == expected
    assert run_name(compose_train("run_name=mine"), context) == "mine"


def test_resume_continues_the_same_run_from_its_last_checkpoint(store):
    from cli_helpers import client, store_uri

    from mlplab.errors import ConfigError, DataError

    tracked = [f"logger.tracking_uri={store_uri(store)}", "logger.log_model=false",
               "logger.plots=false", "dataset.n_samples=200", "trainer.log_every=1"]
    first = run_job(compose_train(*tracked, "trainer.epochs=4",
                                  "trainer.checkpoint_every=2")).run_id
    resumed = run_job(compose_train(*tracked, "trainer.epochs=6", f"trainer.resume={first}"))
    assert resumed.run_id == first and resumed.status == "FINISHED"
    history = client(store).get_metric_history(first, "test_loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]
    plain = run_job(compose_train(*tracked, "trainer.epochs=2")).run_id  # no checkpoints logged
    with pytest.raises(DataError, match=r"^trainer\.resume: run \w+ has no checkpoints"):
        run_job(compose_train(*tracked, "trainer.epochs=3", f"trainer.resume={plain}"))
    assert client(store).get_run(plain).info.status == "FINISHED"  # left as it was
    with pytest.raises(ConfigError, match=r"^trainer\.resume: no run '0+' in sqlite.*runs"):
        run_job(compose_train(*tracked, "trainer.resume=" + "0" * 32))
