"""MNIST: found in a clone's datasets/ or the user cache, else downloaded once into the cache.

The download is checked against a pinned sha256 before it is used, written to a temporary
file and renamed into place only when complete, and reports progress through a callback
(the CLI draws the bar; this module never prints).
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mlpcli.data.builtin import folders
from mlpcli.data.files import Table
from mlpcli.errors import UserError

# Keras' copy (the one `keras.datasets.mnist.load_data()` fetches): uint8 images (n, 28, 28).
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
FILE = "mnist.npz"
ROWS = {"train": 60_000, "test": 10_000}
FEATURES = 784
CLASSES = [str(d) for d in range(10)]

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def cache_dir() -> Path:
    """The user cache: $MLPCLI_CACHE_DIR, else $XDG_CACHE_HOME/mlpcli, else ~/.cache/mlpcli."""
    if os.environ.get("MLPCLI_CACHE_DIR"):
        return Path(os.environ["MLPCLI_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlpcli"


def search_paths() -> list[Path]:
    """Where MNIST is looked for, in order: a clone's datasets/ folder, then the cache."""
    return [folders()[1] / FILE, cache_dir() / FILE]


def find_mnist() -> Path | None:
    """The MNIST file if it is already on this machine."""
    return next((p for p in search_paths() if p.is_file()), None)


def mnist_path(progress: Progress | None = None) -> Path:
    """The MNIST file: found locally, or downloaded into the cache first."""
    found = find_mnist()
    if found is not None:
        return found
    dest = cache_dir() / FILE
    download(MNIST_URL, dest, MNIST_SHA256, progress)
    return dest


def download(
    url: str, dest: Path, sha256: str, progress: Progress | None = None, timeout: float = 30.0
) -> None:
    """Fetch `url` into `dest` atomically; refuse it unless it is complete and matches `sha256`."""
    hint = f"download {url} by hand and put it at {dest}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{dest.parent}: cannot create the cache folder: {exc.strerror}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            done, total, digest = _fetch(url, out, progress, timeout, hint)
        if total is not None and done != total:
            raise UserError(
                f"{url}: download interrupted after {done:,} of {total:,} bytes; run again",
                hint=hint,
            )
        if digest != sha256:
            raise UserError(
                f"{url}: sha256 of the download is {digest}, expected {sha256}; not used",
                hint=hint,
            )
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fetch(
    url: str, out: BinaryIO, progress: Progress | None, timeout: float, hint: str
) -> tuple[int, int | None, str]:
    """Stream `url` into the open file `out`: bytes read, the announced size, the sha256."""
    hasher = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                progress(0, total)
            while block := response.read(1 << 16):
                out.write(block)
                hasher.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot download {url}: {reason}", hint=hint) from None
    return done, total, hasher.hexdigest()


def load_mnist(path: Path) -> tuple[Table, Table]:
    """The official 60,000-row train and 10,000-row test parts; X stays uint8 pixels 0..255."""
    names = [f"pixel_{r}_{c}" for r in range(28) for c in range(28)]
    parts = []
    try:
        with np.load(path, allow_pickle=False) as npz:
            for part in ("train", "test"):
                x, y = npz[f"x_{part}"], npz[f"y_{part}"]
                if x.dtype != np.uint8 or len(x) != len(y) or x[0].size != FEATURES:
                    raise ValueError(f"x_{part} has shape {x.shape}, dtype {x.dtype}")
                table = Table(
                    X=x.reshape(len(x), FEATURES),
                    y=y.astype(np.int64),
                    feature_names=names,
                    target_name="digit",
                    class_names=CLASSES,
                    origin=f"{path}[{part}]",
                )
                parts.append(table)
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(
            f"{path}: not a usable MNIST archive ({exc})",
            hint="it needs uint8 arrays x_train, y_train, x_test, y_test; "
            "delete it to download again",
        ) from None
    return parts[0], parts[1]
