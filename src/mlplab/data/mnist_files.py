"""MNIST / Fashion-MNIST on disk: file names, published checksums, lookup.

Both datasets use the same four IDX files; the widely shared CSV copies hold one table
per split. Checksums are public facts: the sha256 of each *decompressed* MNIST IDX file
(so .gz and raw copies verify alike, whoever compressed them), and for Fashion-MNIST the
md5 of the .gz files its authors publish (no digest of the raw files is published).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlplab.data.checks import check_choice
from mlplab.errors import DataError

KINDS = ("mnist", "fashion_mnist")
FORMATS = ("auto", "idx", "csv")

# (images, labels) IDX file stems per split.
IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_IDX_STEMS = tuple(stem for pair in IDX_STEMS.values() for stem in pair)

CSV_NAMES = {
    "mnist": {"train": "mnist_train.csv", "test": "mnist_test.csv"},
    "fashion_mnist": {"train": "fashion-mnist_train.csv", "test": "fashion-mnist_test.csv"},
}

MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}

# Image geometry and label range shared by both datasets.
IMAGE_SHAPE = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
N_CLASSES = 10


def idx_candidates(directory: Path, stem: str) -> list[Path]:
    """Accepted names for one IDX file, in order of preference."""
    dotted = stem.replace("-idx", ".idx")  # another common spelling of the same files
    return [directory / f"{stem}.gz", directory / stem, directory / dotted]


def find_idx(directory: Path) -> dict[str, Path | None]:
    """stem -> the first existing candidate (None if none exists)."""
    found = {}
    for stem in ALL_IDX_STEMS:
        found[stem] = next((p for p in idx_candidates(directory, stem) if p.is_file()), None)
    return found


def locate(directory: Path, kind: str, fmt: str) -> tuple[str, dict[str, Path]]:
    """('idx', {stem: path}) or ('csv', {'train': path, 'test': path}); DataError if absent.

    `auto` prefers a complete IDX set, then a complete CSV pair.
    """
    check_choice("dataset.kind", kind, KINDS)
    check_choice("dataset.format", fmt, FORMATS)
    idx = find_idx(directory)
    if fmt in ("auto", "idx") and all(idx.values()):
        return "idx", idx
    csv = {split: directory / name for split, name in CSV_NAMES[kind].items()}
    if fmt in ("auto", "csv") and all(p.is_file() for p in csv.values()):
        return "csv", csv
    _check_not_files([p for stem in ALL_IDX_STEMS for p in idx_candidates(directory, stem)]
                     + list(csv.values()))
    wanted = []
    if fmt in ("auto", "idx"):
        missing = [s for s, p in idx.items() if p is None]
        wanted.append(" ".join(f"{s}[.gz]" for s in missing))
    if fmt in ("auto", "csv"):
        wanted.append(" and ".join(csv_path.name for csv_path in csv.values()))
    problem = f"{kind} files missing" if directory.is_dir() else "no such directory"
    raise DataError(f"{directory}: {problem} (looked for {' or '.join(wanted)}); run "
                    f"`mlplab data mnist --kind {kind} --dir {directory}` to download them")


def _check_not_files(paths: list[Path]) -> None:
    """A name that is there but is no readable file is said so, not reported missing."""
    for path in paths:
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a data file; valid choices: the "
                            "file itself under this name (or remove the directory)")
        if path.is_symlink() and not path.exists():
            try:
                path.resolve(strict=True)
            except RuntimeError:  # Python 3.11 raises this for a loop
                problem = "a symbolic link loop"
            except OSError as error:
                problem = ("a symbolic link loop" if "loop" in str(error).lower()
                           else f"a symbolic link to nothing ({path.readlink()})")
            else:
                problem = "a symbolic link to nothing"
            raise DataError(f"{path}: {problem}; valid choices: a link to the file itself, or "
                            "the file")


def verify_idx(path: Path, stem: str, kind: str, content: bytes) -> str:
    """Check a standard-named IDX file against its published digest; returns what was done."""
    if kind == "mnist":
        algo, expected, digest = "sha256", MNIST_SHA256[stem], hashlib.sha256(content)
    elif path.suffix == ".gz":
        algo, expected = "md5", FASHION_GZ_MD5[stem]
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False)
    else:
        return "unverified (no published digest of uncompressed Fashion-MNIST files)"
    if digest.hexdigest() != expected:
        raise DataError(f"{path}: {algo} mismatch (got {digest.hexdigest()}, expected "
                        f"{expected}): the file is corrupt or not the published {kind}; "
                        "download it again, or set dataset.verify=false for a modified copy")
    return algo
