"""A progress bar on an interactive terminal, and silence everywhere else.

Sweep jobs, tests and CI write stderr to files, where a redrawn bar is noise. The bar is
updated only at evaluation epochs, so it adds nothing to the per-epoch cost.
"""

from __future__ import annotations

import sys


def wanted(progress) -> bool:
    if progress == "auto" or progress is None:
        return sys.stderr.isatty()
    return bool(progress)


class ProgressBar:
    def __init__(self, total: int, start: int, enabled, description: str = "training"):
        self._bar = None
        if not wanted(enabled):
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )
        except ImportError:
            return
        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeRemainingColumn(),
                             TextColumn("{task.fields[summary]}"),
                             console=Console(stderr=True), transient=False)
        self._task = self._bar.add_task(description, total=total, completed=start,
                                        summary="")
        self._bar.start()

    def update(self, epoch: int, metrics: dict) -> None:
        if self._bar is None:
            return
        summary = " ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:4])
        self._bar.update(self._task, completed=epoch, summary=summary)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
