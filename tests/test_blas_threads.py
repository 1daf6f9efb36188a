"""The engine holds NumPy's own OpenBLAS to one thread, whatever else is loaded beside it.

SciPy's wheels (which scikit-learn brings) carry an OpenBLAS of their own. An engine that
takes that one for NumPy's leaves NumPy's on all its threads inside each of the engine's
blocks: the oversubscription the engine's single BLAS thread is there to prevent, with no
error to show it. Run in a fresh interpreter, so that the order of imports is the one written
here.
"""

import json
import os
import subprocess
import sys

import pytest

CHECK = """
import json
from pathlib import Path

import numpy as np
import scipy.linalg  # noqa: F401  (maps SciPy's own OpenBLAS into the process)
from threadpoolctl import threadpool_info

from mlpcli.engine import blas

numpy_libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
a, b = np.ones((512, 1024), np.float32), np.ones((1024, 1024), np.float32)
blas.matmul(a, b, np.empty((512, 1024), np.float32))  # large: split by the engine
during = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
blas.restore()
after = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
ours = [p for p in during if Path(p).resolve().parent == numpy_libs]
print(json.dumps({"ours": ours, "during": during, "after": after}))
"""


def test_numpys_openblas_is_the_one_held_to_one_thread_with_scipys_loaded():
    pytest.importorskip("scipy.linalg")
    pytest.importorskip("threadpoolctl")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: OpenBLAS runs one thread anyway")
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    if not seen["ours"]:
        pytest.skip("NumPy's BLAS is not the OpenBLAS of its wheel (numpy.libs)")
    (ours,) = seen["ours"]
    others = [p for p in seen["during"] if p != ours]
    assert others, "SciPy's OpenBLAS was not loaded: the check checks nothing"
    assert seen["during"][ours] == 1  # held while the engine computes
    assert seen["after"][ours] > 1  # and given back afterwards
    for other in others:  # the other library is left as it was
        assert seen["during"][other] == seen["after"][other]
