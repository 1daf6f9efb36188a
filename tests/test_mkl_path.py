"""MKL's GEMM (the `mkl` extra, on Intel CPUs) gives the numbers of NumPy's OpenBLAS.

Products MKL computes must match np.matmul to rounding in every layout the engine uses
(row slices, transposed views), leave to NumPy what MKL cannot read, and be deterministic:
the same bits whatever the arrays' alignment, so that a seed gives bit-identical weights
and a resumed run ends bit-identical to one never interrupted. Skipped without MKL.
"""

import numpy as np
import pytest

from mlpcli.engine import blas
from tests.test_engine_equivalence import DTYPES, close
from tests.test_fast_path import check_paths_agree_and_repeat, check_resumed_run_is_bit_identical

pytestmark = pytest.mark.skipif(
    blas._mkl() is None, reason="MKL not installed (pip install -e '.[mkl]') or not an Intel CPU"
)


@pytest.fixture
def on_mkl(monkeypatch):
    """Test-sized products go to MKL too; returns a switch between MKL and OpenBLAS."""
    monkeypatch.setattr(blas, "MKL_MIN_MACS", 1)

    def use(enabled: bool) -> None:
        monkeypatch.setattr(blas, "USE_MKL", enabled)

    return use


def _operands(dtype):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(70, 33)).astype(dtype)
    w = rng.normal(size=(33, 21)).astype(dtype)
    dz = rng.normal(size=(70, 21)).astype(dtype)
    # forward, dW, dx, and the row blocks the engine splits products into
    return [(x, w), (x.T, dz), (dz, w.T), (x[10:50], w), (x.T[5:20], dz), (dz[3:40], w.T)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_mkl_computes_every_layout_the_engine_uses_and_matches_numpy(monkeypatch, dtype):
    mkl = blas._mkl()
    for a, b in _operands(dtype):
        want = a @ b
        out = np.empty_like(want)
        with monkeypatch.context() as m:  # no quiet fallback: MKL itself computes these
            m.setattr(np, "matmul", lambda *args, **kw: pytest.fail("fell back to NumPy"))
            mkl(a, b, out)
        assert close(out, want, dtype), (a.shape, a.strides, b.strides)


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_engine_products_on_mkl_match_openblas_and_repeat_bit_identically(
    on_mkl, monkeypatch, dtype, split
):
    if split:
        monkeypatch.setattr(blas, "PARALLEL_MIN_MACS", 1)
    for a, b in _operands(dtype):
        results = {}
        for use in (False, True, True):
            on_mkl(use)
            out = blas.matmul(a, b, np.empty((a.shape[0], b.shape[1]), dtype))
            results.setdefault(use, []).append(out.copy())
        assert np.array_equal(results[True][0], results[True][1])
        assert close(results[True][0], results[False][0], dtype)
    blas.restore()


def test_mkl_leaves_what_it_cannot_read_to_numpy():
    mkl = blas._mkl()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 12))
    cases = [
        (x.astype(np.int64), x.astype(np.int64)[:12, :8]),  # integers
        (x.astype(np.float32), x[:12, :8]),  # mixed dtypes
        (x[:, ::2], x[:6, :5]),  # neither rows nor columns contiguous
        (x[:1], x[:12, :8]),  # one row
    ]
    for a, b in cases:
        want = np.matmul(a, b)
        out = np.empty_like(want)
        assert np.array_equal(mkl(a, b, out), want)
    # the output overlapping an operand: NumPy copies, MKL would read what it wrote
    buf = rng.normal(size=(12, 12))
    want = buf @ buf
    assert np.array_equal(mkl(buf, buf.copy(), buf), want)


def test_mkl_results_do_not_depend_on_where_the_arrays_start():
    mkl = blas._mkl()
    rng = np.random.default_rng(5)
    a = rng.normal(size=(128, 96)).astype(np.float32)
    b = rng.normal(size=(96, 64)).astype(np.float32)

    def placed(x, offset):  # a copy of x starting `offset` elements into a fresh buffer
        buf = np.empty(x.size + 32, x.dtype)
        view = buf[offset : offset + x.size].reshape(x.shape)
        view[...] = x
        return view

    results = [
        mkl(placed(a, i), placed(b, (3 * i) % 16), placed(np.zeros((128, 64), np.float32), i % 5))
        for i in range(16)
    ]
    assert all(np.array_equal(r, results[0]) for r in results)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_on_mkl_matches_openblas_and_repeats_bit_identically(on_mkl, dtype):
    check_paths_agree_and_repeat(on_mkl, dtype)


def test_resumed_run_is_bit_identical_on_mkl(on_mkl, tmp_path):
    on_mkl(True)
    check_resumed_run_is_bit_identical(tmp_path)


def test_gemm_names_the_path_products_take(on_mkl):
    on_mkl(True)
    assert blas.gemm().startswith("MKL 20")
    on_mkl(False)
    assert blas.gemm() in ("OpenBLAS", "NumPy's BLAS")
