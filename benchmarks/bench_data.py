"""Data loading: MNIST, and a user's 1M x 20 CSV (`dataset=file`), against plain peers.

    .venv/bin/python benchmarks/bench_data.py [--source DIR] [--repeat N] [--json]
    .venv/bin/python benchmarks/bench_data.py --file [--rows 1000000] [--repeat N]

`--file` writes a CSV of `--rows` rows x 20 float columns and a 0/1 label, then times
`dataset=file` (no cache; first load, which writes the cache; cached) against pandas
`read_csv` + `to_numpy` + the same shuffled split, the usual hand-written loader. Target:
peak memory <= 2x the final arrays (float64, the trainer's default dtype).

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

def pandas_csv(path):
    # The peer: pandas' C parser, one float64 array, a seeded 80/20 shuffled split.
    import pandas
    values = pandas.read_csv(path).to_numpy(np.float64)
    order = np.random.RandomState(0).permutation(values.shape[0])
    n_test = -(-values.shape[0] // 5)
    test, train = order[:n_test], order[n_test:]
    return [values[train, :-1], values[train, -1].astype(np.int64), values[test, :-1],
            values[test, -1].astype(np.int64)]

if mode == "pandas_csv":
    import pandas  # imported before the clock starts, as mlplab's modules are
if mode == "mlplab_first":
    shutil.rmtree(os.path.join(directory, ".cache"), ignore_errors=True)
if mode == "file_first":
    shutil.rmtree(os.path.join(os.path.dirname(directory), ".cache"), ignore_errors=True)
rss_before = rss_bytes()
if trace:
    tracemalloc.start()
start = time.perf_counter()
if mode == "baseline":
    arrays = baseline(directory)
elif mode == "arask_csv":
    arrays = arask_csv(directory)
elif mode == "pandas_csv":
    arrays = pandas_csv(directory)
elif mode.startswith("file_"):
    from mlplab.data import load_dataset
    ds = load_dataset("file", path=directory, data_dir=os.path.dirname(directory),
                      cache=mode != "file_cold")
    arrays = [ds.X_train, ds.y_train, ds.X_test, ds.y_test]
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


def write_table_csv(path: Path, rows: int) -> None:
    """`rows` x 20 standard-normal floats and a 0/1 label, with a header, in blocks."""
    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        handle.write(",".join([f"x{i}" for i in range(20)] + ["label"]) + "\n")
        for start in range(0, rows, 100_000):
            X = rng.standard_normal((min(100_000, rows - start), 20))
            np.savetxt(handle, np.column_stack([X, X[:, 0] > 0]), fmt="%.8g", delimiter=",")


def bench_file(rows: int, repeat: int, as_json: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="mlplab-bench-") as tmp:
        path = Path(tmp) / "table.csv"
        write_table_csv(path, rows)
        results = {"pandas read_csv + to_numpy + split": measure("pandas_csv", path, repeat),
                   "mlplab dataset=file, no cache": measure("file_cold", path, repeat),
                   "mlplab dataset=file, first (writes cache)": measure("file_first", path,
                                                                        repeat),
                   "mlplab dataset=file, cached": measure("file_cached", path, repeat)}
        size_mb = path.stat().st_size / 1e6
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    peer = results["pandas read_csv + to_numpy + split"]["median_s"]
    print(f"CSV {rows} rows x 21 columns ({size_mb:.0f} MB), float64, {repeat} fresh-process "
          f"runs each; final arrays {results['mlplab dataset=file, cached']['final_mb']:.0f} MB")
    print(f"{'':42} {'median s':>9} {'/pandas':>8} {'peak/final':>11} {'RSS/final':>10}  target")
    for name, r in results.items():
        verdict = f"<= 2x {'ok' if r['peak_traced_x'] <= 2 else 'MISSED'}" \
            if name.startswith("mlplab") else ""
        print(f"{name:42} {r['median_s']:9.3f} {r['median_s'] / peer:7.2f}x "
              f"{r['peak_traced_x']:10.2f}x {r['peak_rss_x']:9.2f}x  {verdict}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="directory of MNIST .gz")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--csv", action="store_true",
                        help="also write the CSV copies and time CSV loading (slow)")
    parser.add_argument("--file", action="store_true",
                        help="time dataset=file on a generated CSV instead of MNIST")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of that CSV")
    args = parser.parse_args(argv)
    if args.file:
        return bench_file(args.rows, args.repeat, args.json)
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
