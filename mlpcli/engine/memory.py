"""Arrays the training step streams through on every step, on transparent huge pages.

An optimizer step reads the parameters, their gradient and its state buffers (Adam: four
arrays) once each and touches nothing else, so for a model of a few hundred thousand
parameters it waits on memory: between two steps the GEMMs push those arrays out of the
caches. On 4 KiB pages such a pass also misses the TLB every 4 KiB, and the hardware
prefetchers stop at every page boundary. On 2 MiB pages it does neither: W1's Adam update
(235,146 parameters, cold caches) takes about a fifth less time.

NumPy asks Linux for huge pages only for allocations of 4 MiB and more. `zeros` asks for
smaller ones too, from an anonymous private mapping aligned to 2 MiB, with
madvise(MADV_HUGEPAGE), which Linux honours when transparent huge pages are set to
`always` or `madvise` (the usual default). Elsewhere, and below `MIN_BYTES`, it is
np.zeros. The values are the same either way: only where the bytes live changes.
Arrays that belong together (a model's parameters and their gradient; an optimizer's
buffers) are allocated as rows of one block, so that they share huge pages.
"""

import math
import mmap

import numpy as np

Array = np.ndarray

HUGE_PAGE = 2 << 20
# Smaller blocks are plain np.zeros: a huge page for them would mostly hold nothing.
MIN_BYTES = 1 << 19
ENABLED = hasattr(mmap, "MADV_HUGEPAGE")  # Linux; False forces np.zeros (benchmarks)


def zeros(shape: tuple[int, ...], dtype: np.dtype | type) -> Array:
    """A C-contiguous array of zeros, on transparent huge pages where they are to be had."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if not ENABLED or nbytes < MIN_BYTES:
        return np.zeros(shape, dtype)
    size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
    try:
        # one huge page more than needed, to start the array on a 2 MiB boundary
        block = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        block.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):  # no such mapping here: ordinary memory will do
        return np.zeros(shape, dtype)
    raw = np.frombuffer(block, np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE
    return raw[start : start + nbytes].view(dtype).reshape(shape)
