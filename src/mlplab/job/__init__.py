"""The job layer: a composed config becomes engine objects (`build`), and one job runs
them under an MLflow run (`run`), knowing how Hydra launched it (`context`)."""

from mlplab.job.context import JobContext, context_from_hydra
from mlplab.job.run import JobOutcome, run_job

__all__ = ["JobContext", "JobOutcome", "context_from_hydra", "run_job"]
