"""Checkpoints: plain .npz archives, written atomically, read without pickle, checked.

Keys (DESIGN §4): `layers.{i}.weight` (fan_in, fan_out), `layers.{i}.bias` (fan_out,),
`scaler.mean` / `scaler.scale`, `optimizer.*`, and `meta`, a JSON string with the format
version, the resolved config, the layer sizes and everything else needed to rebuild the
model (and, later, to resume). `h = act(h @ W + b)` layer by layer reproduces the model.
"""

import itertools
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.errors import UserError

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.arrays.items() if k.startswith("layers.")}


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over `path`."""
    meta = {"format_version": FORMAT_VERSION, **meta}
    payload = {**arrays, "meta": np.array(json.dumps(meta))}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and check a checkpoint; any problem is a UserError naming the file."""
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        reason = (
            "it holds pickled objects" if "pickle" in str(exc) else f"not a readable .npz ({exc})"
        )
        raise UserError(f"{path}: not a valid checkpoint: {reason}") from None
    if "meta" not in arrays:
        raise UserError(f"{path}: not a valid checkpoint: no 'meta' entry")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (json.JSONDecodeError, ValueError):
        raise UserError(f"{path}: not a valid checkpoint: 'meta' is not JSON") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: not a valid checkpoint: 'meta' is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path}: unsupported checkpoint format version {version!r} "
            f"(this mlpcli reads {FORMAT_VERSION})"
        )
    _check_shapes(path, arrays, meta)
    return Checkpoint(arrays, meta)


def _check_shapes(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    sizes = meta.get("sizes")
    if not (
        isinstance(sizes, list)
        and len(sizes) >= 2
        and all(isinstance(s, int) and s > 0 for s in sizes)
    ):
        raise UserError(f"{path}: not a valid checkpoint: meta has no valid 'sizes'")
    dtype = np.dtype(meta.get("dtype", "float32"))
    for i, (fi, fo) in enumerate(itertools.pairwise(sizes)):
        for key, shape in ((f"layers.{i}.weight", (fi, fo)), (f"layers.{i}.bias", (fo,))):
            if key not in arrays:
                raise UserError(f"{path}: not a valid checkpoint: missing '{key}'")
            if arrays[key].shape != shape:
                raise UserError(f"{path}: '{key}' has shape {arrays[key].shape}, meta says {shape}")
            if arrays[key].dtype != dtype:
                raise UserError(f"{path}: '{key}' has dtype {arrays[key].dtype}, meta says {dtype}")
    for key in ("scaler.mean", "scaler.scale"):
        if key in arrays and arrays[key].shape != (sizes[0],):
            raise UserError(
                f"{path}: '{key}' has shape {arrays[key].shape}, expected ({sizes[0]},)"
            )
