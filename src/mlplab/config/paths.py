"""Where the project is: the checkout that holds `conf/` (and `outputs/`, `data/`)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "MLPLAB_ROOT"


def project_root() -> Path:
    """The checkout that holds `conf/train.yaml` (the package is installed editable from it).

    `$MLPLAB_ROOT` wins when set, for installs that do not live inside a checkout.
    """
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / "conf" / "train.yaml").is_file() and (parent / "src" / "mlplab").is_dir():
            return parent
    return Path.cwd()


def conf_dir() -> Path:
    return project_root() / "conf"
