"""Which path the engine takes: the NumPy reference, or the fused numba kernels.

The NumPy code (optimizers.py, activations.py, model.py) is the engine's definition and
is always there. When numba is installed (`pip install -e ".[fast]"`), models of at least
`MIN_SIZE` parameters are trained by the kernels of `engine.kernels` instead: one pass per
update instead of ten or so. So are smaller models in runs of at least `MIN_STEPS` steps,
where a few NumPy calls saved on every step add up to more than numba's import. Short runs
of small models stay on NumPy, so that they never pay that import (a few tenths of a
second) or, on the first run after an install, its compilation (about a second).

The choice depends on what is installed, the model's size and the run's planned number of
steps (from its config and data, not from how far it got), never on timing: a run and its
resumption take the same path, and a seed gives bit-identical weights on it.
`ENABLED = False` forces the NumPy reference (tests and benchmarks compare the two).
"""

from types import ModuleType

ENABLED = True

# A model with fewer parameters than this stays on NumPy: its update costs a few NumPy
# calls of about a microsecond each, which no kernel makes much cheaper.
MIN_SIZE = 50_000
# A run planned for at least this many steps (restarts x epochs x batches an epoch) takes
# the kernels whatever its size: a small model's step is then ~15-20 us shorter (fused
# loss, activation and update), which outweighs numba's ~0.5 s import well before here.
MIN_STEPS = 50_000

_kernels: ModuleType | None = None
_missing = False  # numba was looked for and is not installed


def kernels(size: int, steps: int = 0) -> ModuleType | None:
    """The kernels module for a model of `size` parameters trained for `steps` steps (0:
    not training, or not known), or None for the NumPy path."""
    if not ENABLED or (size < MIN_SIZE and steps < MIN_STEPS) or _missing:
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


def path(size: int, steps: int = 0) -> str:
    """'numba' or 'numpy': what a model of `size` parameters runs on for `steps` steps."""
    return "numba" if kernels(size, steps) is not None else "numpy"
