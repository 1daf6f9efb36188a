"""Matrix products on several cores, deterministically, without the BLAS's own threads.

OpenBLAS (what NumPy's wheels use) splits a product across its threads and waits for all of
them at the end. When another program keeps the other core busy, that wait is a scheduler
time slice, milliseconds, for every product: on the shared 2-core machine mlpcli was tuned
on, a W1 epoch took 36 s that way instead of 0.7 s on one thread.

So the engine keeps OpenBLAS on one thread (set through ctypes: NumPy has no API for it) and
splits large products itself, by rows of the output, into one block per core. Python threads
take blocks from a shared counter (np.matmul releases the GIL while BLAS runs); when the other
core is busy, the calling thread computes the remaining blocks itself instead of waiting. The
blocks depend on the shapes alone, never on which thread computed them, so a seed still gives
bit-identical weights. (OpenBLAS's own results differ in the last bits between one and two
threads: the thread count must not depend on timing.)

Where no OpenBLAS is found (another BLAS, another OS), products are plain np.matmul with that
BLAS's own threading.

The blocks themselves are NumPy's OpenBLAS, or MKL's cblas_sgemm / cblas_dgemm where the `mkl`
extra is installed and the CPU is an Intel one, for products of at least MKL_MIN_MACS
multiply-adds (on the Intel Xeon machines mlpcli runs on, 1.1x OpenBLAS's rate on the large
products of a wide MLP, split over the cores as the engine does). MKL runs sequentially (the blocks
are still the engine's), with its conditional numerical reproducibility on: the same inputs
give the same bits from run to run. Which GEMM runs depends on what is installed and on the
CPU, never on timing; `gemm()` names it. `USE_MKL = False` forces OpenBLAS (tests compare
the two).
"""

import ctypes
import functools
import importlib
import itertools
import os
import queue
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Array = np.ndarray

# Products with fewer multiply-adds than this run as one block: handing a block to another
# thread costs tens of microseconds (waking it), more than a 4e6-MAC product saves (~35 us).
PARALLEL_MIN_MACS = 10_000_000
MIN_BLOCK_ROWS = 16

# MKL computes products of at least this many multiply-adds (W3's, MNIST's 1024-wide layers);
# smaller ones stay on OpenBLAS. Measured on the Intel Xeon: W3 7% faster an epoch on MKL, W1
# (products of 4e6-3e7) 3% slower, its blocks too short for MKL's gain to cover the ctypes call.
MKL_MIN_MACS = 50_000_000
USE_MKL: bool | None = None  # None: MKL where it is installed (and the CPU is Intel's)

_SYMBOLS = [  # (set, get): scipy-openblas as bundled in NumPy's wheels, then plain OpenBLAS
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
]


def _find_openblas() -> ctypes.CDLL | None:
    """NumPy's own BLAS library, opened through NumPy's core extension module; None where
    that cannot be done.

    The dynamic linker looks a symbol up in the module it was asked for and in the libraries
    that module was linked against, so another OpenBLAS in the process (SciPy's, which
    scikit-learn brings) is never taken for NumPy's. Until 2026-12-03 the engine took the
    first OpenBLAS listed in /proc/self/maps: with SciPy loaded that was SciPy's, held to one
    thread while NumPy's ran its own threads inside each of the engine's blocks.
    """
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # 2.x, 1.x
        try:
            path = importlib.import_module(name).__file__
        except ImportError:
            continue
        try:
            return ctypes.CDLL(path)
        except (OSError, TypeError):  # not a shared library (a static or unusual build)
            return None
    return None


@functools.cache
def _mkl() -> "_Mkl | None":
    """MKL from the `mkl` wheel (its libraries beside this Python), on an Intel CPU; loaded on
    the first large product, so that small models never pay for it."""
    try:
        if "GenuineIntel" not in Path("/proc/cpuinfo").read_text():
            return None  # not measured as a gain on other CPUs
    except OSError:
        return None
    found = sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so.*"), reverse=True)
    if not found:
        return None
    try:  # the newest soname
        return _Mkl(ctypes.CDLL(str(found[0])))
    except (OSError, AttributeError):  # not loadable, or without the symbols used
        return None


class _Mkl:
    """out = a @ b through cblas_?gemm, for 2-D float32 / float64 operands MKL can read."""

    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
    SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL
    CNR_AUTO = 2  # MKL_CBWR_AUTO: bitwise reproducible results on this CPU

    def __init__(self, lib: ctypes.CDLL) -> None:
        # in this order, before any other MKL call (the other way round MKL stays threaded)
        lib.MKL_Set_Threading_Layer(ctypes.c_int(self.SEQUENTIAL))
        lib.MKL_CBWR_Set(ctypes.c_int(self.CNR_AUTO))
        if lib.MKL_Get_Max_Threads() != 1:
            raise OSError("MKL did not take the sequential threading layer")
        buf = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
        found = re.search(r"Version ([\d.]+)", buf.value.decode(errors="replace"))
        self.version = found.group(1) if found else "?"
        self.funcs: dict[np.dtype, Callable[..., None]] = {}
        for dtype, name, scalar in (
            (np.float32, "cblas_sgemm", ctypes.c_float),
            (np.float64, "cblas_dgemm", ctypes.c_double),
        ):
            func = getattr(lib, name)
            func.restype = None
            i, p = ctypes.c_int, ctypes.c_void_p
            func.argtypes = [i, i, i, i, i, i, scalar, p, i, p, i, scalar, p, i]
            self.funcs[np.dtype(dtype)] = func

    def __call__(self, a: Array, b: Array, out: Array) -> Array:
        func = self.funcs.get(out.dtype)
        if func is None or a.dtype != out.dtype or b.dtype != out.dtype or min(out.shape) < 2:
            return np.matmul(a, b, out=out)
        ta, lda = _layout(a)
        tb, ldb = _layout(b)
        tc, ldc = _layout(out)
        if not (lda and ldb and tc == self.NO_TRANS and ldc) or _overlap(out, a, b):
            return np.matmul(a, b, out=out)
        (m, k), n = a.shape, b.shape[1]
        func(self.ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
             0.0, out.ctypes.data, ldc)  # fmt: skip
        return out


def _layout(x: Array) -> tuple[int, int]:
    """(transpose flag, leading dimension) of a 2-D array for row-major BLAS; ld 0 if none fits."""
    rows, cols = x.shape
    s0, s1 = x.strides
    size = x.itemsize
    if s1 == size and s0 % size == 0 and s0 // size >= cols:
        return _Mkl.NO_TRANS, s0 // size  # rows of a row-major matrix (maybe a row slice)
    if s0 == size and s1 % size == 0 and s1 // size >= rows and min(rows, cols) > 1:
        return _Mkl.TRANS, s1 // size  # the transpose of one (x.T, W.T)
    return _Mkl.NO_TRANS, 0


def _overlap(out: Array, a: Array, b: Array) -> bool:
    return bool(np.may_share_memory(out, a) or np.may_share_memory(out, b))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Product:
    """One piece of work split into blocks (callables), which any thread may claim and run."""

    def __init__(self, blocks: Sequence[Callable[[], object]]) -> None:
        self.blocks = blocks
        self.next = 0
        self.remaining = len(blocks)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        """Run unclaimed blocks until none is left."""
        while True:
            with self.lock:
                i = self.next
                if i >= len(self.blocks):
                    return
                self.next = i + 1
            try:
                self.blocks[i]()
            except BaseException as exc:  # re-raised in the calling thread
                self.error = exc
            with self.lock:
                self.remaining -= 1
                if self.remaining == 0:
                    self.done.set()


class _Blas:
    """The loaded OpenBLAS's thread setting, and the helper threads."""

    def __init__(self) -> None:
        self.setter: Callable[[int], None] | None = None
        self.default = self.current = 1
        lib = _find_openblas()
        for set_name, get_name in _SYMBOLS if lib is not None else []:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                self.setter = getattr(lib, set_name)
                self.default = self.current = int(getattr(lib, get_name)())
                break
        # as many threads as the BLAS would use (OPENBLAS_NUM_THREADS=1 means one)
        self.cores = min(_cores(), self.default) if self.setter is not None else 1
        self.jobs: queue.SimpleQueue[_Product] = queue.SimpleQueue()
        self.helpers: list[threading.Thread] = []

    def single_threaded(self) -> None:
        if self.setter is not None and self.current != 1:
            self.setter(1)
            self.current = 1

    def restore(self) -> None:
        if self.setter is not None and self.current != self.default:
            self.setter(self.default)
            self.current = self.default

    def run(self, product: _Product) -> None:
        """Compute a product's blocks on this thread and any idle helper."""
        if not self.helpers:
            for _ in range(self.cores - 1):
                helper = threading.Thread(target=self._serve, daemon=True, name="mlpcli-blas")
                helper.start()
                self.helpers.append(helper)
        for _ in self.helpers:
            self.jobs.put(product)
        product.work()
        product.done.wait()  # only for blocks a helper claimed and is still computing
        if product.error is not None:
            raise product.error

    def _serve(self) -> None:
        while True:
            self.jobs.get().work()  # a late helper finds every block claimed: nothing to do


_blas: _Blas | None = None


def _forget() -> None:
    """In a forked child the helper threads are gone: start afresh on first use."""
    global _blas
    _blas = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def _state() -> _Blas:
    global _blas
    if _blas is None:
        _blas = _Blas()
    return _blas


def matmul(a: Array, b: Array, out: Array) -> Array:
    """out = a @ b (a 2-D or 1-D, b 2-D), on one BLAS thread per block, blocks in parallel."""
    state = _blas or _state()
    if state.current != 1:
        state.single_threaded()
    macs = a.size * b.shape[-1]
    if a.ndim != 2 or macs < min(MKL_MIN_MACS, PARALLEL_MIN_MACS):
        return np.matmul(a, b, out=out)  # small: called once per step many times, keep it lean
    gemm: Callable[[Array, Array, Array], Array] = _numpy_gemm
    if macs >= MKL_MIN_MACS and USE_MKL is not False and (mkl := _mkl()) is not None:
        gemm = mkl
    rows = a.shape[0]
    n_blocks = min(state.cores, rows // MIN_BLOCK_ROWS) if macs >= PARALLEL_MIN_MACS else 1
    if n_blocks < 2:
        return gemm(a, b, out)
    edges = [rows * i // n_blocks for i in range(n_blocks + 1)]
    blocks = [
        functools.partial(gemm, a[lo:hi], b, out[lo:hi]) for lo, hi in itertools.pairwise(edges)
    ]
    state.run(_Product(blocks))
    return out


def _numpy_gemm(a: Array, b: Array, out: Array) -> Array:
    return np.matmul(a, b, out=out)


def gemm(macs: int | None = None) -> str:
    """The GEMM a product of `macs` multiply-adds runs on (default: the largest products):
    'MKL <version>' or 'OpenBLAS' (NumPy's BLAS). Asking about a small one loads no MKL."""
    large = macs is None or macs >= MKL_MIN_MACS
    if large and USE_MKL is not False and (mkl := _mkl()) is not None:
        return f"MKL {mkl.version}"
    return "OpenBLAS" if _state().setter is not None else "NumPy's BLAS"


def parallel(blocks: Sequence[Callable[[], object]]) -> None:
    """Run independent blocks of work (functions that release the GIL) on the cores.

    As for products: the calling thread runs blocks too, and runs them all itself when the
    helper threads are busy, so a busy machine costs no waiting.
    """
    state = _blas or _state()
    if state.cores < 2 or len(blocks) < 2:
        for block in blocks:
            block()
        return
    state.run(_Product(blocks))


def restore() -> None:
    """Give the BLAS back its own thread count, for NumPy code outside the engine."""
    state = _blas or _state()
    if state.current != state.default:
        state.restore()


def cores() -> int:
    """Threads the engine computes large products on (1 without a controllable OpenBLAS)."""
    return _state().cores


def kernel() -> str | None:
    """The OpenBLAS kernel NumPy runs (e.g. SkylakeX, Haswell), or None if not OpenBLAS.

    OPENBLAS_CORETYPE in the environment overrides the detected one: an older kernel on a
    newer CPU can halve the GEMM rate, so benchmarks report it.
    """
    lib = _find_openblas()
    for name in (
        "scipy_openblas_get_corename64_",
        "scipy_openblas_get_corename",
        "openblas_get_corename64_",
        "openblas_get_corename",
    ):
        if lib is not None and hasattr(lib, name):
            func = getattr(lib, name)
            func.restype = ctypes.c_char_p
            return func().decode()
    return None
