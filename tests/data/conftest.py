"""Fixtures for the data tests: real MNIST (when present) and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from data_writers import MNIST_GZ

SHARED_MNIST = Path("/work/shared/data/mnist")


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """The read-only copy of real MNIST; tests needing it are skipped without it."""
    if not all((SHARED_MNIST / name).is_file() for name in MNIST_GZ):
        pytest.skip(f"real MNIST not available in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture
def mnist_dir(tmp_path, shared_mnist) -> Path:
    """A private directory of symlinks to real MNIST, so caches land in tmp_path."""
    directory = tmp_path / "mnist"
    directory.mkdir()
    for name in MNIST_GZ:
        (directory / name).symlink_to(shared_mnist / name)
    return directory


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code="-", size="-"):  # record each request once
        self.server.requests.append(self.path)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    """Start a static file server on 127.0.0.1 (free port) over tmp_path/'www'.

    Yields (root directory, base URL); `server.requests` lists the paths requested.
    """
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
