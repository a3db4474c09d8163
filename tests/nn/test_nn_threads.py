import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mlplab.errors import ConfigError
from mlplab.nn import blas_threads, set_blas_threads
from mlplab.nn.threads import blas_threads_in_use


def _blas_counts():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_threads_limits_inside_and_restores_after():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_counts()
        with blas_threads(1):
            assert _blas_counts() and set(_blas_counts()) == {1}
        assert _blas_counts() == before
        with blas_threads(None):
            assert _blas_counts() == before


def test_set_blas_threads_persists():
    with threadpool_limits(limits=2, user_api="blas"):
        set_blas_threads(1)
        assert set(_blas_counts()) == {1}


@pytest.mark.parametrize("bad", [0, -2, 1.5, "two"])
def test_invalid_thread_counts_raise_config_error(bad):
    with pytest.raises(ConfigError):
        set_blas_threads(bad)


def test_blas_threads_in_use_reads_the_current_count():
    """The libraries are found once; their thread counts are read at each call."""
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads_in_use() == max(_blas_counts())
        with threadpool_limits(limits=1, user_api="blas"):
            assert blas_threads_in_use() == 1
        assert blas_threads_in_use() == max(_blas_counts())


def test_a_blas_library_loaded_after_the_first_call_is_limited_too():
    """SciPy brings its own OpenBLAS: imported after mlplab has found the libraries, it
    must still be found and limited (in a fresh process, where SciPy is not loaded yet)."""
    code = """
from threadpoolctl import threadpool_info
from mlplab.nn.threads import set_blas_threads
def blas():
    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"}
set_blas_threads(1)
before = blas()
import scipy.linalg
assert set(blas()) - set(before), "SciPy loaded no BLAS library of its own"
set_blas_threads(1)
assert set(blas().values()) == {1}, blas()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
