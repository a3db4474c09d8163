"""Control the BLAS thread pool that NumPy's matmuls run on (via threadpoolctl).

Small networks run faster on one thread (thread start-up costs more than the work), and
parallel sweep jobs on one machine should not each grab every core.

Finding the loaded BLAS libraries means walking every shared library of the process: with
MLflow, SQLAlchemy and pandas imported, about 3 ms a call, and a sweep's job set the limit
and read it back. So the libraries found are kept (`_blas`) and looked for again only once
the process has imported another module (the way a new BLAS library gets loaded, e.g. with
SciPy); their thread counts are read live at each call.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

from mlplab.constraints import Interval, check

BLAS_THREADS = Interval(int, 1)


def _check(n) -> int:
    return check("blas_threads", n, BLAS_THREADS)


# The libraries found, and how many modules the process had imported then.
_FOUND: list = [None, -1]


def _blas():
    """The loaded BLAS libraries, as a threadpoolctl controller (see the module docstring)."""
    imported = len(sys.modules)
    if _FOUND[0] is None or _FOUND[1] != imported:
        _FOUND[:] = [ThreadpoolController().select(user_api="blas"), imported]
    return _FOUND[0]


def set_blas_threads(n: int) -> None:
    """Limit every loaded BLAS library to n threads from now on."""
    _blas().limit(limits=_check(n))


def blas_threads_in_use() -> int:
    """The largest thread count among the loaded BLAS libraries."""
    return max((lib["num_threads"] for lib in _blas().info()), default=1)


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with BLAS limited to n threads (None: leave as is), then restore."""
    if n is None:
        yield
        return
    with _blas().limit(limits=_check(n)):
        yield
