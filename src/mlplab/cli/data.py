"""`mlplab data ...`: fetch and check datasets that live on disk.

    mlplab data mnist [--dir D] [--kind mnist|fashion_mnist] [--mirror URL ...] [--force]

`data_main(argv)` receives the arguments after `mlplab data` and returns the exit status:
0 on success, 2 with one `mlplab: error: ...` line on stderr for anything the user can fix
(bad option, unreachable mirrors, corrupt files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

from mlplab.data.download import MIRRORS, download_mnist
from mlplab.data.mnist import read_mnist
from mlplab.data.mnist_files import KINDS
from mlplab.data.paths import dataset_dir
from mlplab.errors import ConfigError, DataError


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2, instead of argparse's exit
        raise _UsageError(message)


MIRROR_SCHEMES = ("https", "http", "file")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlplab data", description="Fetch and verify datasets.")
    commands = parser.add_subparsers(dest="command", metavar="{mnist}", parser_class=_Parser)
    mnist = commands.add_parser(
        "mnist", help="download MNIST or Fashion-MNIST (checksum-verified) and decode it once",
        description="Download the four IDX files, verify their published checksums, and "
                    "build the decode cache so the first training run starts fast.")
    mnist.add_argument("--kind", choices=KINDS, default="mnist")
    mnist.add_argument("--dir", type=Path, default=None, metavar="D",
                       help="directory for the files (default: <data_dir>/<kind>, where "
                            "data_dir is $MLPLAB_DATA_DIR or <project root>/data)")
    mnist.add_argument("--mirror", action="extend", nargs="+", default=None, metavar="URL",
                       help="base URL(s) to try in order instead of the built-in mirrors: "
                            + ", ".join(MIRRORS["mnist"]))
    mnist.add_argument("--force", action="store_true",
                       help="download again even if valid files are present")
    mnist.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check_mirrors(mirrors) -> None:
    """A mirror is a base URL the files are fetched from: http(s) or file."""
    for mirror in mirrors or []:
        parsed = urlparse(mirror)
        if parsed.scheme not in MIRROR_SCHEMES or not (parsed.netloc or parsed.path):
            raise ConfigError(f"--mirror: {mirror!r} is not a URL; valid choices: a base URL "
                              f"({', '.join(s + '://...' for s in MIRROR_SCHEMES)}), e.g. "
                              f"{MIRRORS['mnist'][0]}")


def _mnist(args) -> int:
    _check_mirrors(args.mirror)
    directory = args.dir if args.dir is not None else dataset_dir(None, args.kind)
    download_mnist(directory, args.kind, args.mirror,
                   progress=False if args.no_progress else None, force=args.force)
    raw = read_mnist(directory, kind=args.kind, format="idx")
    print(f"{args.kind}: {raw.X_train.shape[0]} train and {raw.X_test.shape[0]} test images "
          f"verified in {directory}")
    return 0


def data_main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise _UsageError("missing command; valid commands: mnist")
        return _mnist(args)
    except _UsageError as exc:
        print(f"mlplab data: error: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, DataError) as exc:
        print(f"mlplab: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("mlplab: interrupted", file=sys.stderr)
        return 130
