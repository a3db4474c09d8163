"""Control the BLAS thread pool that NumPy's matmuls run on (via threadpoolctl).

Small networks run faster on one thread (thread start-up costs more than the work), and
parallel sweep jobs on one machine should not each grab every core.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_info, threadpool_limits

from mlplab.constraints import Interval, check

BLAS_THREADS = Interval(int, 1)


def _check(n) -> int:
    return check("blas_threads", n, BLAS_THREADS)


def set_blas_threads(n: int) -> None:
    """Limit every loaded BLAS library to n threads from now on."""
    threadpool_limits(limits=_check(n), user_api="blas")


def blas_threads_in_use() -> int:
    """The largest thread count among the loaded BLAS libraries."""
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(counts, default=1)


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with BLAS limited to n threads (None: leave as is), then restore."""
    if n is None:
        yield
        return
    with threadpool_limits(limits=_check(n), user_api="blas"):
        yield
