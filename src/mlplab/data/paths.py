"""Where datasets live on disk.

Runs, tests and the `mlplab data` command must agree on one location, otherwise a
download lands where training never looks. The rule is: an explicit `data_dir`, else
`$MLPLAB_DATA_DIR`, else `data/` under the project root.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "MLPLAB_DATA_DIR"

# Sub-directory of the data directory that holds each IDX dataset.
DATASET_SUBDIRS = {"mnist": "mnist", "fashion_mnist": "fashion_mnist"}


def project_root() -> Path | None:
    """The checkout holding pyproject.toml above this package (editable install), or None.

    An installed wheel has no such directory; callers then fall back to the working
    directory so the default stays predictable.
    """
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "mlplab").is_dir():
            return parent
    return None


def default_data_dir() -> Path:
    """`$MLPLAB_DATA_DIR`, else `<project root>/data`, else `./data`."""
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    root = project_root()
    return (root if root is not None else Path.cwd()) / "data"


def dataset_dir(data_dir: str | os.PathLike | None, kind: str) -> Path:
    """The directory a file-backed dataset (`mnist`, `fashion_mnist`) is looked up in."""
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return base / DATASET_SUBDIRS[kind]
