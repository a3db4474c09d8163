"""How many store transactions the end of a run costs (each `log_batch` is one)."""

from mlflow_job import EXPERIMENT, small_job

from mlplab.tracking import MlflowRun, get_client


def test_the_last_metrics_and_the_outcome_are_one_write(uri, monkeypatch):
    ds, _, trainer = small_job(6, log_every=1)
    # flush_seconds so long that every evaluation is still buffered when training ends
    with MlflowRun(EXPERIMENT, tracking_uri=uri, plots=False, log_model=False,
                   flush_seconds=1e9) as run:
        writes = []
        raw = run.client.raw
        log_batch = raw.log_batch
        monkeypatch.setattr(raw, "log_batch",
                            lambda *a, **k: (writes.append(k), log_batch(*a, **k))[1])
        trainer.callbacks.append(run)
        result = trainer.fit(ds)
    assert len(writes) == 1
    [write] = writes
    assert len(write["metrics"]) == 6 * len(result.history)
    assert {tag.key for tag in write["tags"]} == {"objective", "objective_metric"}
    logged = get_client(uri).get_run(run.run_id)
    assert logged.info.status == "FINISHED"
    assert float(logged.data.tags["objective"]) == result.objective
    for key, points in result.history.items():
        history = get_client(uri).get_metric_history(run.run_id, key)
        assert sorted((m.step, m.value) for m in history) == points
