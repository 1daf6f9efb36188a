"""Every write into a run directory: atomic, and never through a symbolic link.

A run directory can come from a stranger (or be edited by one): a `metrics.csv` that is a
link to `~/.bashrc` must not make `--resume` append to that file. So no write here follows a
link, neither the file's nor its folder's (`checkpoints/` as a link to elsewhere), and a
refused write is an OSError naming the file, as a full disk is.
"""

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from mlpcli.errors import UserError

LINK_REFUSED = "a symbolic link: mlpcli never writes through one"


def refuse_links(paths: Iterable[Path]) -> None:
    """A UserError if any of `paths` is a symbolic link (checked before a run is touched)."""
    for path in paths:
        if path.is_symlink():
            raise UserError(f"{path}: {LINK_REFUSED}")


def _check_target(path: Path) -> None:
    for p in (path, path.parent):
        if p.is_symlink():
            raise OSError(errno.ELOOP, LINK_REFUSED, str(p))


def replace_atomically(
    path: Path, write: Callable[[IO[bytes]], object], durable: bool = True
) -> None:
    """Write a temporary file beside `path` with `write`, then rename it over `path`.

    The rename makes the write all-or-nothing for a killed process; `durable` also fsyncs
    first, so the file survives a power cut too. The rename replaces a link rather than
    following it, and `_check_target` refuses a link before anything is written.
    """
    _check_target(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a second Ctrl-C included: leave no temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, durable: bool = True) -> None:
    replace_atomically(path, lambda f: f.write(text.encode("utf-8")), durable)


def write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(content, indent=2) + "\n")


def open_append(path: Path, truncate: bool = False) -> IO[str]:
    """`path` opened to append text (created if absent, emptied with `truncate`), refusing a
    link (O_NOFOLLOW)."""
    _check_target(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_TRUNC if truncate else 0
    fd = os.open(path, flags, 0o644)
    return os.fdopen(fd, "a", newline="", encoding="utf-8")
