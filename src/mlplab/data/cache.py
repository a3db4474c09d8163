"""A cache of decoded arrays next to the source files.

Decoding MNIST (gunzip, checksum, parse; or parsing CSV text) costs about a second; reading
the decoded `.npy` files back costs a few milliseconds. The cache is keyed on each source
file's name, size and modification time, so replacing or editing a source invalidates it.
Writing is best effort: a read-only data directory simply gets no cache.
`create` writes arrays too large to hold twice: the caller fills memory-mapped files in
place, so the parsed table lives in the page cache rather than in the process's heap.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import numpy as np

CACHE_SUBDIR = ".cache"
CACHE_VERSION = 1


def fingerprint(sources: list[Path]) -> list[list]:
    """[name, size, mtime_ns] per source; take it *before* reading the sources, so a file
    replaced while it is being decoded leaves a cache that no longer matches."""
    out = []
    for path in sources:
        stat = path.stat()
        out.append([path.name, stat.st_size, stat.st_mtime_ns])
    return out


class ArrayCache:
    """Arrays stored as `<directory>/.cache/<name>.<array>.npy` plus `<name>.json`."""

    def __init__(self, directory: Path, name: str):
        self.root = Path(directory) / CACHE_SUBDIR
        self.name = name
        self.manifest = self.root / f"{name}.json"

    def _array_path(self, key: str) -> Path:
        return self.root / f"{self.name}.{key}.npy"

    def load(self, key: list[list]) -> dict[str, np.ndarray] | None:
        """The cached arrays (memory-mapped, read-only), or None when absent or stale."""
        try:
            meta = json.loads(self.manifest.read_text())
            if meta.get("version") != CACHE_VERSION or meta["sources"] != key:
                return None
            arrays = {}
            for name, (shape, dtype) in meta["arrays"].items():
                array = np.load(self._array_path(name), mmap_mode="r", allow_pickle=False)
                if list(array.shape) != shape or array.dtype.str != dtype:
                    return None
                arrays[name] = array
            return arrays
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, partial or foreign cache: decode the sources again

    def save(self, key: list[list], arrays: dict[str, np.ndarray]) -> bool:
        """Write arrays then the manifest (last, so readers never see half a cache)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                _atomic_write(self._array_path(name), lambda f, a=array: np.save(
                    f, np.ascontiguousarray(a), allow_pickle=False))
            meta = {"version": CACHE_VERSION, "sources": key,
                    "arrays": {k: [list(a.shape), a.dtype.str] for k, a in arrays.items()}}
            _atomic_write(self.manifest, lambda f: f.write(json.dumps(meta).encode()))
            return True
        except OSError:
            return False


    def create(self, key: list[list], shapes: dict[str, tuple[tuple, str]], fill):
        """Create memory-mapped arrays of `shapes` ({name: (shape, dtype)}), let
        `fill(arrays)` write them in place, and publish them under `key`.

        Returns the arrays as `load` gives them, or None when the directory cannot be
        written (the caller then works in memory). An exception from `fill` (bad data)
        removes the partial files and propagates.
        """
        temporary: dict[str, Path] = {}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            arrays = {}
            for name, (shape, dtype) in shapes.items():
                temporary[name] = _temporary_name(self._array_path(name))
                arrays[name] = np.lib.format.open_memmap(temporary[name], mode="w+",
                                                         dtype=dtype, shape=shape)
            fill(arrays)
            del arrays  # unmapped; written pages reach readers through the page cache,
            # and are not synced here, as `save` does not sync either (msync doubled the
            # time of a first load of a 1M-row file)
            for name in shapes:
                os.replace(temporary.pop(name), self._array_path(name))
            meta = {"version": CACHE_VERSION, "sources": key,
                    "arrays": {k: [list(shape), np.dtype(dtype).str]
                               for k, (shape, dtype) in shapes.items()}}
            _atomic_write(self.manifest, lambda f: f.write(json.dumps(meta).encode()))
        except OSError:
            return None
        finally:
            for path in temporary.values():
                path.unlink(missing_ok=True)
        return self.load(key)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _atomic_write(path: Path, write) -> None:
    """Call write(file) on a temp file in the same directory, then rename it into place."""
    tmp = _temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
