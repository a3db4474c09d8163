"""Download MNIST / Fashion-MNIST from public mirrors, checksum-verified.

Each file is streamed to a temporary file next to its destination while its digest is
computed on the fly (for MNIST the sha256 of the decompressed stream, for Fashion-MNIST
the md5 of the .gz), and renamed into place only when the digest matches, so a partial
or corrupt download never looks like data. A failing mirror (HTTP error, timeout, wrong
digest) moves on to the next one; only when every mirror fails is a DataError raised.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from mlplab.data.checks import check_choice
from mlplab.data.idx import read_file_bytes
from mlplab.data.mnist_files import (
    ALL_IDX_STEMS,
    FASHION_GZ_MD5,
    KINDS,
    MNIST_SHA256,
    find_idx,
    verify_idx,
)
from mlplab.errors import DataError

MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
}
CHUNK = 1 << 16
USER_AGENT = "mlplab-data/1 (+urllib)"


class _Digest:
    """Running digest of what verification compares: decompressed bytes or the raw .gz."""

    def __init__(self, kind: str, stem: str):
        if kind == "mnist":
            self.algo, self.expected = "sha256", MNIST_SHA256[stem]
            self.hash = hashlib.sha256()
            self.inflate = zlib.decompressobj(wbits=31)  # gzip container
        else:
            self.algo, self.expected = "md5", FASHION_GZ_MD5[stem]
            self.hash = hashlib.md5(usedforsecurity=False)
            self.inflate = None

    def update(self, chunk: bytes) -> None:
        if self.inflate is None:
            self.hash.update(chunk)
            return
        while chunk:
            self.hash.update(self.inflate.decompress(chunk))
            chunk = b""
            if self.inflate.eof and self.inflate.unused_data:  # next gzip member
                chunk = self.inflate.unused_data
                self.inflate = zlib.decompressobj(wbits=31)

    def problem(self) -> str | None:
        """None if the digest matches, else why not."""
        if self.inflate is not None:
            self.hash.update(self.inflate.flush())
            if not self.inflate.eof:
                return "truncated gzip stream"
        got = self.hash.hexdigest()
        return None if got == self.expected else f"{self.algo} mismatch (got {got[:12]}...)"


def _progress(name: str, done: int, total: int | None) -> None:
    if total:
        width = 30
        filled = width * done // total
        bar = "#" * filled + "-" * (width - filled)
        line = f"\r{name:<28} [{bar}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB"
    else:
        line = f"\r{name:<28} {done / 1e6:6.1f} MB"
    sys.stderr.write(line)
    sys.stderr.flush()


def _fetch(url: str, dest: Path, digest: _Digest, timeout: float, progress: bool) -> str | None:
    """Stream url into dest (atomically); None on success, else the reason it failed."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    drawn = False
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, tmp.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = drawn_at = 0
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress and (done - drawn_at >= (total or 0) // 100 or done == total):
                    _progress(dest.name, done, total)  # about 100 redraws per file
                    drawn, drawn_at = True, done
        problem = digest.problem()
        if problem is None:
            os.replace(tmp, dest)
        return problem
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, http.client.HTTPException, OSError, zlib.error,
            ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return f"{type(exc).__name__}: {reason}"
    finally:
        tmp.unlink(missing_ok=True)
        if drawn:
            sys.stderr.write("\n")


def _present_and_valid(path: Path | None, stem: str, kind: str) -> bool:
    if path is None or path.suffix != ".gz":
        return False
    try:
        verify_idx(path, stem, kind, read_file_bytes(path))
    except DataError:
        return False
    return True


def download_mnist(directory, kind: str = "mnist", mirrors=None, *, progress=None,
                   timeout: float = 60.0, force: bool = False) -> list[Path]:
    """Fetch the four gzip IDX files of `kind` into `directory`; returns their paths.

    Files already present and matching their checksum are kept (unless `force`).
    `mirrors` are base URLs tried in order (default: `MIRRORS[kind]`); `progress` draws a
    bar on stderr (default: when stderr is a terminal).
    """
    check_choice("--kind", kind, KINDS)
    directory = Path(directory).expanduser()
    mirrors = list(mirrors or MIRRORS[kind])
    progress = sys.stderr.isatty() if progress is None else progress
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{directory}: cannot create directory ({exc.strerror})") from None
    existing = find_idx(directory)
    paths = []
    for stem in ALL_IDX_STEMS:
        dest = directory / f"{stem}.gz"
        paths.append(dest)
        if not force and _present_and_valid(existing[stem], stem, kind):
            continue
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + dest.name
            problem = _fetch(url, dest, _Digest(kind, stem), timeout, progress)
            if problem is None:
                break
            failures.append(f"{url}: {problem}")
        else:
            raise DataError(f"{dest.name}: download failed from every mirror ("
                            + "; ".join(failures) + ")")
    return paths
