"""Imported last by the pool's forkserver (`mlplab.multirun.forkserver.PRELOAD`), and
only there: it sets up the server process itself.

- SIGTERM is ignored. A SIGTERM to the sweep's process group reaches the server too; were
  it to die, every worker forked from it would look dead to loky (their exit status comes
  through the server), and loky would kill the workers still closing their runs. Python's
  forkserver already ignores SIGINT. The workers inherit the ignored SIGTERM until their
  first job installs its handlers, and a pool worker ignores it again while it waits for
  its next job (`mlplab.signals.job_signals`): a signal to the group stops the jobs, not
  the pool.
- What the imports before this one made lives as long as every worker, so it is frozen
  out of the garbage collector, once: a worker's collections then never walk it (nor
  write to its pages, which the fork shares until one of them is written).
"""

import gc
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
gc.collect()
gc.freeze()
