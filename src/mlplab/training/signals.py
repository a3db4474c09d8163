"""SIGINT/SIGTERM during a fit: finish the epoch, checkpoint, return KILLED.

Handlers are installed only while `fit` runs and the previous ones are put back after,
so the trainer never changes how the rest of the program reacts to signals. A second
signal while the first is being honoured raises KeyboardInterrupt at once, for a user who
really wants out. Signal handlers can only be set from the main thread; elsewhere (a
thread-based launcher) the trainer runs without them.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """Context manager calling `on_signal(name)` on the first SIGINT/SIGTERM."""

    def __init__(self, on_signal):
        self.on_signal = on_signal
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            self._restore()
            raise KeyboardInterrupt(f"second signal ({name}) while stopping")
        self.received = name
        self.on_signal(name)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def __exit__(self, *exc) -> bool:
        self._restore()
        return False
