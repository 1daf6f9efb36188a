"""How fast mlpcli reads a large numeric CSV, and how much memory it holds while doing so.

    python benchmarks/load_csv.py [--rows 60000] [--cols 784] [--file PATH] [--repeat 3]

Writes a CSV of MNIST's shape (integer pixels 0..255, the label last) into a temporary
folder unless --file names one, reads it with `mlpcli.data.files.read_table` and prints
rows/s and the peak memory traced during the read (NumPy reports its buffers to
tracemalloc) next to the float32 size of the data. The memory pass runs separately because
tracing slows the read.
"""

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mlpcli.data.files import read_table


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--cols", type=int, default=784)
    parser.add_argument("--file", type=Path, help="an existing CSV to read instead")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "big.csv"
        if args.file is None:
            start = time.perf_counter()
            write_csv(path, args.rows, args.cols)
            print(
                f"wrote {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - start:.1f} s"
            )
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            table = read_table(path, None)
            times.append(time.perf_counter() - start)
        rows, cols = table.X.shape
        del table
        tracemalloc.start()
        read_table(path, None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    best = min(times)
    data32 = rows * cols * 4
    print(
        f"{rows} x {cols} CSV: best of {args.repeat} reads {best:.2f} s = {rows / best:,.0f} rows/s"
    )
    print(
        f"peak traced memory {peak / 1e6:.0f} MB = {peak / data32:.2f}x the data as float32 "
        f"({data32 / 1e6:.0f} MB); the result itself is float64 (2x)"
    )


if __name__ == "__main__":
    main()
