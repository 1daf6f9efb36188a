"""Will the configured network fit in memory? Estimated before anything is allocated.

`units: 100000` twice is 10^10 parameters: NumPy would try to allocate 40 GB per copy and
the machine would swap or the kernel would kill the process. The estimate counts what
training keeps: the parameters and their gradients, the optimizer's buffers, the best
weights kept for the final model and for each restart, and one batch's activations.
"""

import contextlib
import itertools
import os
from pathlib import Path

import numpy as np

from mlpcli.errors import UserError

# Per-parameter buffers each optimizer keeps (adam: two moments); unknown names: two.
OPTIMIZER_BUFFERS = {"sgd": 1, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2}
PARAMETER_COPIES = 4  # weights, gradients, best weights, this restart's best weights
ACTIVATION_COPIES = 2  # a forward pass keeps each layer's pre-activations and activations


def training_bytes(sizes: list[int], rows: int, dtype: str, optimizer: str) -> int:
    """Bytes training a network of layer `sizes` needs, about, with `rows` rows forwarded at
    once (a batch, or a whole split when it is evaluated)."""
    itemsize = np.dtype(dtype).itemsize
    params = sum(fi * fo + fo for fi, fo in itertools.pairwise(sizes))
    copies = PARAMETER_COPIES + OPTIMIZER_BUFFERS.get(optimizer, 2)
    return itemsize * (params * copies + rows * sum(sizes) * ACTIVATION_COPIES)


def available_bytes() -> int | None:
    """Memory this process may still use: available RAM, or the cgroup's limit if lower."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not limits and hasattr(os, "sysconf"):
        with contextlib.suppress(OSError, ValueError):
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            limits.append(int(limit) - int(used))
    except OSError:
        pass
    return min(limits) if limits else None


def check_fits(
    sizes: list[int], hidden_units: list[int], rows: int, dtype: str, optimizer: str
) -> None:
    """A UserError naming the largest hidden layer if training cannot fit in memory."""
    need = training_bytes(sizes, rows, dtype, optimizer)
    have = available_bytes()
    if have is None or need <= have:
        return
    if hidden_units:
        i = int(np.argmax(hidden_units))
        key = f"model.hidden.{i}.units: {hidden_units[i]}"
    else:
        key = f"data: {sizes[0]} input features"
    raise UserError(
        f"{key}: training this {'-'.join(map(str, sizes))} network needs about "
        f"{_gb(need)} of memory ({dtype}, {optimizer}), more than the {_gb(have)} available; "
        "use fewer units"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"
