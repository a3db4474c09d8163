"""IDX files (the MNIST container format) and label-first CSV tables.

IDX layout: two zero bytes, a type code, the number of dimensions, each dimension as a
big-endian uint32, then the values in C order. The whole file is read and decompressed
in one call and the values are viewed with `np.frombuffer`, which is the fastest path and
holds only one copy of the data.
"""

from __future__ import annotations

import gzip
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from mlplab.errors import DataError

# IDX type code -> dtype (multi-byte values are big-endian).
IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_file_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when the name ends in .gz."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if path.suffix != ".gz":
        return raw
    if not raw:
        raise DataError(f"{path}: file is empty (0 bytes); expected gzip-compressed IDX data")
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip data ({exc}); "
                        "delete it and download it again") from None


def parse_idx(data: bytes, where: str | Path) -> np.ndarray:
    """Decode IDX bytes into an array (a read-only view on `data`); validate everything."""
    if len(data) == 0:
        raise DataError(f"{where}: file is empty (0 bytes); expected IDX data")
    if len(data) < 4:
        raise DataError(f"{where}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{where}: bad magic number 0x{magic:08x}; not an IDX file (MNIST "
                        "images start with 0x00000803, labels with 0x00000801)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{where}: truncated IDX header ({len(data)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual < expected:
        raise DataError(f"{where}: truncated: the header announces shape {dims} "
                        f"({expected} data bytes) but only {actual} bytes follow")
    if actual > expected:
        raise DataError(f"{where}: {actual - expected} unexpected bytes after the data of "
                        f"shape {dims}; the file is corrupt")
    return np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize,
                         offset=header).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(read_file_bytes(path), path)


def read_label_csv(path: Path, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """(values (n, n_values) uint8, labels (n,) uint8) from a label-first CSV table.

    The layout of the widely shared MNIST CSV files: an optional header row, then per
    row the label followed by the pixel values, all integers 0..255.
    """
    expected = f"expected a header row, then rows of a label and {n_values} integers 0-255"
    try:
        with path.open("rb") as handle:
            first = handle.readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not first.strip():
        raise DataError(f"{path}: file is empty; {expected}")
    first_cell = first.split(b",", 1)[0].strip()
    has_header = not first_cell.isdigit()
    try:
        with warnings.catch_warnings():  # "input contained no data": reported below
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, delimiter=",", skiprows=int(has_header),
                               dtype=np.uint8, ndmin=2)
    except ValueError as exc:
        reason = str(exc).split(";")[0].splitlines()[0].rstrip(".")
        raise DataError(f"{path}: {reason}; {expected}") from None
    if table.shape[0] == 0:
        raise DataError(f"{path}: no data rows; {expected}")
    if table.shape[1] != n_values + 1:
        raise DataError(f"{path}: rows have {table.shape[1]} columns; {expected} "
                        f"({n_values + 1} columns)")
    return np.ascontiguousarray(table[:, 1:]), np.ascontiguousarray(table[:, 0])
