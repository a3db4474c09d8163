import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mlplab.errors import ConfigError
from mlplab.nn import blas_threads, set_blas_threads


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
