"""How fast mlpcli reads a large CSV, and how much memory it holds while doing so.

    python benchmarks/load_csv.py                         # 60000 x 784 pixels (MNIST's shape)
    python benchmarks/load_csv.py --mixed                 # 1,000,000 x 20, 5 of them text
    python benchmarks/load_csv.py --rows 200000 --cols 20 --categorical 5 --repeat 1

Writes a CSV into a temporary folder: integer pixels 0..255 with the label last, or with
--mixed (`--categorical K`) a table of decimal numbers with K text columns (8 levels each)
and a text label. It is read with `mlpcli.data.files.read_table`; with K > 0 the same shape
all-numeric is also written and read both by today's reader and by the reader of the last
commit before text columns existed (from git, `--baseline`), so the time and memory per cell
of a mixed table stand next to those of the numeric reader, measured in the same run. Peak
memory is traced during a separate read (NumPy reports its buffers to tracemalloc; tracing
slows the read).
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench import cpu_model  # benchmarks/bench.py: this script's folder is on sys.path

from mlpcli.data.files import read_table

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "6267e06"  # main just before one reader for text columns (issue 14)


def write_csv(path: Path, rows: int, cols: int, seed: int = 0) -> None:
    """A header and `rows` lines of integers: sparse like MNIST (about 80% zeros)."""
    rng = np.random.default_rng(seed)
    with path.open("w", encoding="utf-8") as f:
        f.write(",".join([*(f"pixel{j}" for j in range(cols)), "label"]) + "\n")
        for start in range(0, rows, 1000):
            n = min(1000, rows - start)
            block = rng.integers(0, 256, (n, cols)) * (rng.random((n, cols)) < 0.2)
            labels = rng.integers(0, 10, (n, 1))
            lines = [",".join(map(str, row)) for row in np.hstack([block, labels]).tolist()]
            f.write("\n".join(lines) + "\n")


LEVELS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def write_mixed(path: Path, rows: int, cols: int, categorical: int, seed: int = 0) -> None:
    """`cols` columns, the first `categorical` of them text (8 levels), the rest decimals
    with 4 digits; the label (text) last. categorical=0: the same table all numeric."""
    rng = np.random.default_rng(seed)
    words = np.array(LEVELS)
    with path.open("w", encoding="utf-8") as f:
        f.write(",".join([*(f"c{j}" for j in range(cols)), "label"]) + "\n")
        for start in range(0, rows, 5000):
            n = min(5000, rows - start)
            text = words[rng.integers(0, len(LEVELS), (n, categorical))]
            numbers = np.char.mod("%.4f", rng.normal(size=(n, cols - categorical)))
            labels = np.where(rng.random(n) < 0.5, "yes", "no")[:, None]
            table = np.hstack([text, numbers, labels])
            f.write("\n".join(",".join(row) for row in table.tolist()) + "\n")


def baseline_reader() -> Callable[..., object] | None:
    """`read_table` of the numeric-only reader (git BASELINE), or None outside a clone."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE}:mlpcli/data/files.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "baseline_files.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_files", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_table  # type: ignore[no-any-return]


def measure(read: Callable[..., object], path: Path, repeat: int) -> tuple[float, int]:
    """Best time of `repeat` reads, and the peak traced memory of one more."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read(path, None)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    read(path, None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int)
    parser.add_argument("--cols", type=int)
    parser.add_argument("--categorical", type=int, default=0, help="text columns (mixed table)")
    parser.add_argument("--mixed", action="store_true", help="1,000,000 x 20 with 5 text columns")
    parser.add_argument("--file", type=Path, help="an existing CSV to read instead")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.mixed:
        args.rows, args.cols, args.categorical = args.rows or 1_000_000, args.cols or 20, 5
    rows, cols = args.rows or 60_000, args.cols or 784
    print(f"CPU: {cpu_model()}; Python {sys.version.split()[0]}, NumPy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.file is not None:
            best, peak = measure(read_table, args.file, args.repeat)
            table = read_table(args.file, None)
            n, k = table.X.shape
            print(f"{args.file}: {n} x {k}: {best:.2f} s, peak {peak / 1e6:.0f} MB")
            return
        if not args.categorical:
            path = Path(tmp) / "big.csv"
            write_csv(path, rows, cols)
            best, peak = measure(read_table, path, args.repeat)
            data32 = rows * cols * 4
            print(f"{rows} x {cols} CSV: best of {args.repeat} reads {best:.2f} s = "
                  f"{rows / best:,.0f} rows/s")  # fmt: skip
            print(
                f"peak traced memory {peak / 1e6:.0f} MB = {peak / data32:.2f}x the data as "
                f"float32 ({data32 / 1e6:.0f} MB); the result itself is float64 (2x)"
            )
            return
        mixed, numeric = Path(tmp) / "mixed.csv", Path(tmp) / "numeric.csv"
        start = time.perf_counter()
        write_mixed(mixed, rows, cols, args.categorical)
        write_mixed(numeric, rows, cols, 0)
        print(f"wrote two {rows:,} x {cols} CSVs in {time.perf_counter() - start:.0f} s\n")
        cells = rows * cols
        readers = [
            (f"mixed, {args.categorical} text columns", read_table, mixed),
            ("all numeric", read_table, numeric),
        ]
        old = baseline_reader()
        if old is not None:
            readers.append((f"all numeric, reader of {BASELINE}", old, numeric))
        results = {label: measure(read, path, args.repeat) for label, read, path in readers}
    base_t, base_m = results[readers[-1][0]]
    print(f"| {rows:,} x {cols} CSV | time | ns / cell | peak memory | bytes / cell | "
          "time vs last row | memory vs last row |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, (t, m) in results.items():
        print(
            f"| {label} | {t:.2f} s | {t / cells * 1e9:.0f} | {m / 1e6:.0f} MB | {m / cells:.1f} "
            f"| {t / base_t:.2f}x | {m / base_m:.2f}x |"
        )


if __name__ == "__main__":
    main()
