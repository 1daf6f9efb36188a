"""Which path the engine takes: the NumPy reference, or the fused numba kernels.

The NumPy code (optimizers.py, activations.py, model.py) is the engine's definition and
is always there. When numba is installed (`pip install -e ".[fast]"`), arrays of at least
`MIN_SIZE` elements are updated by the kernels of `engine.kernels` instead: one pass per
update instead of ten or so. Smaller models stay on NumPy, so that they never pay numba's
import (a few tenths of a second) or, on the first run after an install, its compilation.

The choice depends on what is installed and on the sizes alone, never on timing: a run and
its resumption take the same path, and a seed gives bit-identical weights on it.
`ENABLED = False` forces the NumPy reference (tests and benchmarks compare the two).
"""

from types import ModuleType

ENABLED = True

# A model with fewer parameters than this stays on NumPy: its update costs a few NumPy
# calls of about a microsecond each, which no kernel makes much cheaper.
MIN_SIZE = 50_000

_kernels: ModuleType | None = None
_missing = False  # numba was looked for and is not installed


def kernels(size: int) -> ModuleType | None:
    """The kernels module for arrays of `size` elements, or None for the NumPy path."""
    if not ENABLED or size < MIN_SIZE or _missing:
        return None
    return _kernels or _load()


def _load() -> ModuleType | None:
    global _kernels, _missing
    try:
        from mlpcli.engine import kernels as module
    except ImportError:  # numba is not installed: the NumPy path, for good
        _missing = True
        return None
    _kernels = module
    return module


def available() -> bool:
    """Whether numba is installed (it is imported to find out)."""
    return _load() is not None if not _missing else False


def path(size: int) -> str:
    """'numba' or 'numpy': what a model of `size` parameters runs on."""
    return "numba" if kernels(size) is not None else "numpy"
