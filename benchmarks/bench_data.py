"""MNIST loading: cold decode, cached load and peak memory, against a plain baseline.

    .venv/bin/python benchmarks/bench_data.py [--source DIR] [--repeat N] [--json]

Each measurement runs in a fresh interpreter so no page cache of earlier arrays, allocator
state or imported module skews it. The source files (default: the shared MNIST copy) are
symlinked into a temporary directory, so the cache is written there and never into the
source. Targets: cold load (IDX gz, no cache) <= 3 s, cached load <= 0.3 s, peak memory of
a float32 load <= 2x the final arrays.

Peak memory is reported two ways: tracemalloc (every NumPy buffer and Python object
allocated during the load) and the growth of the process's peak RSS (also counts pages of
the memory-mapped cache).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_paths import mnist_dir

SOURCE = mnist_dir()
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# Runs in the child interpreter.
# MODE: baseline | arask_csv | mlplab_cold | mlplab_first | mlplab_cached | mlplab_csv.
CHILD = r"""
import json, os, resource, shutil, sys, time, tracemalloc
mode, directory, trace = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
import numpy as np
from mlplab.data.mnist import load_mnist

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def baseline(directory):
    # What a tutorial does: gunzip each file, view the bytes, convert to float32 / 255.
    import gzip, os
    def read(name, offset):
        with gzip.open(os.path.join(directory, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    out = []
    for prefix in ("train", "t10k"):
        images = read(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 784)
        out += [images.astype(np.float32) / 255, read(f"{prefix}-labels-idx1-ubyte.gz", 8)
                .astype(np.int64)]
    return out

def arask_csv(directory):
    # The arask tutorial's reader: np.loadtxt of each CSV as float64, then x / max(x).
    out = []
    for split in ("train", "test"):
        data = np.loadtxt(os.path.join(directory, f"mnist_{split}.csv"), skiprows=1,
                          delimiter=",")
        x = data[:, 1:]
        out += [x / np.max(x), data[:, 0].astype(np.int64)]
    return out

if mode == "mlplab_first":
    shutil.rmtree(os.path.join(directory, ".cache"), ignore_errors=True)
rss_before = rss_bytes()
if trace:
    tracemalloc.start()
start = time.perf_counter()
if mode == "baseline":
    arrays = baseline(directory)
elif mode == "arask_csv":
    arrays = arask_csv(directory)
else:
    fmt = "csv" if mode == "mlplab_csv" else "idx"
    ds = load_mnist(directory, dtype="float32", format=fmt,
                    cache=mode in ("mlplab_cached", "mlplab_first"))
    arrays = [ds.X_train, ds.y_train, ds.X_test, ds.y_test]
seconds = time.perf_counter() - start
peak_traced = tracemalloc.get_traced_memory()[1] if trace else None
peak_rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
print(json.dumps({"seconds": seconds, "peak_traced": peak_traced,
                  "peak_rss_growth": peak_rss_growth,
                  "final_bytes": sum(a.nbytes for a in arrays)}))
"""


def run_child(mode: str, directory: Path, trace: bool) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, mode, str(directory), str(int(trace))],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench_data: {mode} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def measure(mode: str, directory: Path, repeat: int) -> dict:
    times = [run_child(mode, directory, trace=False)["seconds"] for _ in range(repeat)]
    memory = run_child(mode, directory, trace=True)
    return {"median_s": statistics.median(times), "best_s": min(times),
            "peak_traced_x": memory["peak_traced"] / memory["final_bytes"],
            "peak_rss_x": memory["peak_rss_growth"] / memory["final_bytes"],
            "final_mb": memory["final_bytes"] / 1e6}


def write_csv_copies(directory: Path) -> None:
    """mnist_train.csv / mnist_test.csv in the common layout, made from the IDX files."""
    from mlplab.data.mnist import read_mnist

    raw = read_mnist(directory, cache=False)
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    for split, X, y in (("train", raw.X_train, raw.y_train), ("test", raw.X_test, raw.y_test)):
        table = np.column_stack([y, X])
        np.savetxt(directory / f"mnist_{split}.csv", table, fmt="%d", delimiter=",",
                   header=header, comments="")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="directory of MNIST .gz")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--csv", action="store_true",
                        help="also write the CSV copies and time CSV loading (slow)")
    args = parser.parse_args(argv)
    if not all((args.source / name).is_file() for name in FILES):
        print(f"bench_data: MNIST .gz files not found in {args.source}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mlplab-bench-") as tmp:
        directory = Path(tmp) / "mnist"
        directory.mkdir()
        for name in FILES:
            (directory / name).symlink_to(args.source.resolve() / name)
        results = {"baseline (gzip + frombuffer + astype)": measure("baseline", directory,
                                                                     args.repeat),
                   "mlplab cold (verify, no cache)": measure("mlplab_cold", directory,
                                                             args.repeat)}
        results["mlplab first load (decode + write cache)"] = measure(
            "mlplab_first", directory, args.repeat)
        results["mlplab cached"] = measure("mlplab_cached", directory, args.repeat)
        if args.csv:
            write_csv_copies(directory)
            results["arask CSV (np.loadtxt float64)"] = measure("arask_csv", directory, 1)
            results["mlplab CSV (no cache)"] = measure("mlplab_csv", directory, 1)
    targets = {"mlplab cold (verify, no cache)": 3.0,
               "mlplab first load (decode + write cache)": 3.0, "mlplab cached": 0.3}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"MNIST float32, {args.repeat} fresh-process runs each; final arrays "
          f"{results['mlplab cached']['final_mb']:.1f} MB")
    print(f"{'':42} {'median s':>9} {'best s':>8} {'peak/final':>11} {'RSS/final':>10}  target")
    for name, r in results.items():
        time_target = targets.get(name)
        verdict = "" if time_target is None else (
            f"<= {time_target} s {'ok' if r['median_s'] <= time_target else 'MISSED'}, ")
        if name.startswith("mlplab"):
            verdict += f"<= 2x {'ok' if r['peak_traced_x'] <= 2 else 'MISSED'}"
        print(f"{name:42} {r['median_s']:9.3f} {r['best_s']:8.3f} {r['peak_traced_x']:10.2f}x "
              f"{r['peak_rss_x']:9.2f}x  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
