"""Reading a user's file into one numeric table: CSV/TSV, `.npy`, `.npz`, Parquet.

A `Table` holds the columns a run uses, as one (n, columns) float64 array (or the `.npy`
array itself, memory-mapped) plus their names. Delimited text is parsed in blocks of
rows into an array allocated once at its final size: a file's rows are counted while it
is hashed, so no growing buffer is ever copied, and when the cache is writable that array
is a memory-mapped cache file (`ArrayCache.create`) rather than heap memory.

Every error is one line naming the file and, for a bad cell, its line and column.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlplab.errors import ConfigError, DataError

DELIMITERS = {".csv": ",", ".tsv": "\t"}
EXTENSIONS = (*DELIMITERS, ".npy", ".npz", ".parquet")
READ_BLOCK = 1 << 24  # bytes hashed at a time
# Bytes of text parsed at a time: the block's text, its lines and their parsed rows are
# the parser's only temporaries, a few times this size whatever the size of the file.
PARSE_BLOCK = 1 << 22


@dataclass
class Table:
    """`values[:, j]` is column `names[j]`; `where(i)` names row i in messages."""

    values: np.ndarray
    names: list[str]
    line_offset: int | None  # file line of row 0 (text formats), None: rows are indices

    def where(self, row: int) -> str:
        return f"row {row}" if self.line_offset is None else f"line {row + self.line_offset}"


def extension(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ConfigError(f"dataset.path: {path}: unknown extension {suffix or '(none)'!r}; "
                          f"valid extensions: {', '.join(EXTENSIONS)}")
    return suffix


def hash_and_count_lines(path: Path, *, count: bool = True) -> tuple[str, int | None]:
    """(sha256 hex digest, number of lines) in one read of the file (None: not counted).

    Trailing blank lines are not counted; a blank line between data rows is refused later,
    when the parsed row count falls short of this count.
    """
    digest, newlines, tail = hashlib.sha256(), 0, b""
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
            if count:
                newlines += block.count(b"\n")
                tail = (tail + block)[-4096:]
    if not count:
        return digest.hexdigest(), None
    stripped = tail.rstrip()
    trailing = tail[len(stripped):].count(b"\n")
    return digest.hexdigest(), newlines - trailing + (1 if stripped else 0)


def file_sha256(path: Path) -> str:
    return hash_and_count_lines(path, count=False)[0]


def count_lines(path: Path) -> int:
    """Lines of the file, trailing blank lines left out (as `hash_and_count_lines`)."""
    newlines, tail = 0, b""
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            newlines += block.count(b"\n")
            tail = (tail + block)[-4096:]
    stripped = tail.rstrip()
    return newlines - tail[len(stripped):].count(b"\n") + (1 if stripped else 0)


def read_header(path: Path, delimiter: str) -> list[str]:
    """The column names of a delimited file's first line (quotes and a BOM removed)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    names = next(csv.reader([first], delimiter=delimiter), [])
    names = [name.strip() for name in names]
    if not any(names):
        raise DataError(f"{path}: the first line must be a header of column names")
    return names


def parse_block(data: bytes, delimiter: str, usecols: list[int]) -> np.ndarray:
    """Whole lines of delimited numbers as (rows, len(usecols)) float64, columns in the
    order of `usecols`; ValueError for a cell that is not a number.

    pandas' C parser when pandas is there (1.5x NumPy's `loadtxt`; its default float
    parser gave Python's `float()` bits on 600k random values), else `loadtxt`, which
    also takes over a block pandas refuses (it reads `nan` and `inf` as numbers, for the
    finiteness check to name). Missing cells are refused, not read as NaN.
    """
    try:
        # Imported on a first parse only: half a second of start-up most runs never need.
        import pandas
    except ImportError:
        pandas = None
    if pandas is not None:
        try:
            frame = pandas.read_csv(io.BytesIO(data), sep=delimiter, header=None,
                                    usecols=usecols, dtype=np.float64, na_filter=False,
                                    engine="c")
            return frame[usecols].to_numpy(dtype=np.float64)
        except ValueError:
            pass
    return np.loadtxt(io.StringIO(data.decode("utf-8")), delimiter=delimiter,
                      usecols=usecols, dtype=np.float64, ndmin=2, comments=None,
                      quotechar='"')


def _find_bad_cell(path, lines, first_line, delimiter, usecols, names) -> DataError | None:
    """The one-line error for the first unparsable cell or ragged row of `lines` (the slow
    path, run only after the block parser has refused the block), or None."""
    for number, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=first_line):
        if not cells:
            continue
        if len(cells) != len(names):
            return DataError(f"{path}: line {number} has {len(cells)} cells, the header has "
                             f"{len(names)}")
        for column in usecols:
            try:
                float(cells[column])
            except ValueError:
                return DataError(f"{path}: line {number}, column {names[column]!r}: "
                                 f"non-numeric value {cells[column].strip()!r}; used cells "
                                 "must be numbers (dataset.features chooses the columns)")
    return None


def check_finite_block(path, block: np.ndarray, first_row: int, names, where) -> None:
    """Refuse NaN and infinite cells, naming the first one's row and column."""
    bad = ~np.isfinite(block)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: {where(first_row + row)}, column {names[column]!r}: "
                        f"{block[row, column]} (NaN or infinite); cells must be finite "
                        "numbers")


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def parse_delimited(path: Path, delimiter: str, usecols: list[int], names: list[str],
                    out: np.ndarray) -> None:
    """Parse the data rows of `path` (columns `usecols`) into `out`, (rows, len(usecols)),
    a block of lines at a time; `out`'s row count is the file's data line count."""
    used = [names[c] for c in usecols]
    filled, line, rest = 0, 2, b""
    with open(path, "rb") as handle:
        handle.readline()  # the header
        while True:
            block = handle.read(PARSE_BLOCK)
            text = rest + block
            cut = text.rfind(b"\n") + 1 if block else len(text)
            rest, data = text[cut:], text[:cut]
            if data:
                try:
                    values = parse_block(data, delimiter, usecols)
                except ValueError as error:
                    last = line + data.count(b"\n") - 1
                    raise _find_bad_cell(path, _lines(data), line, delimiter, usecols,
                                         names) or DataError(
                        f"{path}: lines {line}-{last}: {error}") from None
                if not np.isfinite(values).all():  # a short row, or a NaN/inf cell
                    bad = _find_bad_cell(path, _lines(data), line, delimiter, usecols, names)
                    if bad is not None:
                        raise bad
                if filled + values.shape[0] > out.shape[0]:  # lines counted by their \n
                    raise DataError(f"{path}: more rows than newline characters near line "
                                    f"{line}; lines must end in \\n or \\r\\n")
                check_finite_block(path, values, filled, used, lambda r: f"line {r + 2}")
                out[filled:filled + values.shape[0]] = values
                filled += values.shape[0]
                line += data.count(b"\n")
            if not block:
                break
    if filled != out.shape[0]:
        raise DataError(f"{path}: {out.shape[0] - filled} blank line(s) among the data rows; "
                        "remove them")


def _numeric_2d(path: Path, array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: {what} has dtype {array.dtype}; numbers are needed")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[0] == 0:
        raise DataError(f"{path}: {what} must be a non-empty (rows, columns) array, got "
                        f"shape {array.shape}")
    return array


def read_npy(path: Path) -> np.ndarray:
    """The `.npy` array, memory-mapped (never copied whole), as (rows, columns)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable .npy array ({error})") from None
    return _numeric_2d(path, array, "the array")


def read_npz(path: Path, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Arrays `x_name` and `y_name` of an `.npz` archive, each (rows, columns)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = list(archive.files)
            X, y = (archive[name] if name in present else None for name in (x_name, y_name))
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None
    for key, name, array in (("features", x_name, X), ("target", y_name, y)):
        if array is None:
            raise ConfigError(f"dataset.{key}: {path} has no array {name!r}; its arrays: "
                              f"{', '.join(present) or '(none)'}")
    X, y = _numeric_2d(path, X, f"array {x_name!r}"), _numeric_2d(path, y, f"array {y_name!r}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: array {x_name!r} has {X.shape[0]} rows, {y_name!r} has "
                        f"{y.shape[0]}")
    return X, y


def parquet_columns(path: Path) -> list[str]:
    return list(_pyarrow_parquet(path).read_schema(path).names)


def read_parquet(path: Path, columns: list[str]) -> np.ndarray:
    """The chosen columns of a Parquet file as (rows, columns) float64."""
    frame = _pyarrow_parquet(path).read_table(path, columns=columns).to_pandas()
    for name in columns:
        kind = frame[name].dtype.kind
        if kind not in "biuf":
            import pandas as pd  # optional, slow to import: only for this message

            refused = pd.to_numeric(frame[name], errors="coerce").isna() & frame[name].notna()
            row = int(np.flatnonzero(refused.to_numpy())[0]) if refused.any() else 0
            raise DataError(f"{path}: row {row}, column {name!r}: non-numeric value "
                            f"{frame[name].iloc[row]!r}; used cells must be numbers")
    return frame.to_numpy(dtype=np.float64)


def _pyarrow_parquet(path: Path):
    # Imported when a Parquet file is read: optional packages, and a second of start-up.
    try:
        import pandas  # noqa: F401  (to_pandas needs it)
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(f"dataset.path: reading {path} (Parquet) needs pandas and pyarrow, "
                        "which are not installed; pip install pandas pyarrow, or save the "
                        "data as .csv, .npy or .npz") from None
    return parquet
