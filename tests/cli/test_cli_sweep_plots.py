"""`logger.plots` left null: every figure for a single run, none for sweep jobs (the UI
draws their learning curves from the metrics)."""

from __future__ import annotations

import pytest
from cli_helpers import client, store_uri

from mlplab.config import compose_train
from mlplab.job.context import JobContext
from mlplab.job.run import run_job, run_plots

QUICK = ["dataset.n_samples=200", "trainer.epochs=2", "logger.log_model=false"]
EVERY_MOONS_PLOT = {"plots/learning_curves.png", "plots/weight_histograms.png",
                    "plots/confusion_matrix.png", "plots/decision_boundary.png"}


@pytest.mark.parametrize("setting,single,sweep_job", [
    ([], True, False),
    (["logger.plots=true"], True, True),
    (["logger.plots=false"], False, False),
    (["logger=none"], False, False),
])
def test_what_each_setting_asks_for(setting, single, sweep_job):
    cfg = compose_train(*setting)
    assert run_plots(cfg, JobContext()) == single
    assert run_plots(cfg, JobContext(sweep_dir="/tmp/sweep")) == sweep_job


def _logged_plots(store, context: JobContext, *overrides: str) -> set[str]:
    cfg = compose_train(*QUICK, f"logger.tracking_uri={store_uri(store)}", *overrides)
    run_id = run_job(cfg, context).run_id
    return {artifact.path for artifact in client(store).list_artifacts(run_id, "plots")}


def test_sweep_jobs_draw_no_figure_unless_asked(store):
    sweep = JobContext(sweep_dir=str(store / "multirun"))
    assert _logged_plots(store, JobContext()) == EVERY_MOONS_PLOT
    assert _logged_plots(store, sweep) == set()
    assert _logged_plots(store, sweep, "logger.plots=true") == EVERY_MOONS_PLOT
