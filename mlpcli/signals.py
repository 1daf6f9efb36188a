"""Stop signals: which ones stop a run, and the one place handlers are installed and restored."""

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

# Ctrl-C, `kill` / SLURM / Kubernetes, a closed terminal: each stops training the same way.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

Handler = Callable[[int, Any], None]


@contextlib.contextmanager
def handling(handle: Handler, signums: tuple[int, ...] = STOP_SIGNALS) -> Iterator[bool]:
    """Install `handle` for `signums` and put the previous handlers back afterwards.

    Yields False and changes nothing off the main thread, where Python refuses handlers.
    """
    previous: dict[int, Any] = {}
    try:
        for signum in signums:
            previous[signum] = signal.signal(signum, handle)
    except ValueError:  # not the main thread: the first call fails, nothing is installed
        yield False
        return
    try:
        yield True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
