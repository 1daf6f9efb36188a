"""Checkpoints: plain .npz archives, written atomically, read without pickle, checked.

Keys: `layers.{i}.weight` (fan_in, fan_out), `layers.{i}.bias` (fan_out,), `optimizer.*`,
and `meta`, a JSON string with the format version, the resolved config, the layer sizes, the
fitted input pipeline (`meta.preprocess`: fill values, scaling, categories) and everything
else needed to rebuild the model and resume. Applying `meta.preprocess`, then
`h = act(h @ W + b)` layer by layer, reproduces the model.

Format 1 (before the pipeline) kept the standardisation in `scaler.mean` / `scaler.scale`
arrays over numeric features; such checkpoints still load, as a numbers-only pipeline.
"""

import itertools
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli.data import preprocess
from mlpcli.engine import ACTIVATIONS, OUTPUTS
from mlpcli.errors import UserError
from mlpcli.sizes import available_bytes
from mlpcli.writes import replace_atomically

FORMAT_VERSION = 2  # 2: meta.preprocess replaces the scaler.* arrays
READABLE_VERSIONS = (1, 2)
DTYPES = ("float32", "float64")


@dataclass
class Checkpoint:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.arrays.items() if k.startswith("layers.")}


def save_checkpoint(
    path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], durable: bool = True
) -> None:
    """Write atomically: a temporary file in the same folder, then rename over `path`.

    The rename alone makes the write all-or-nothing for a killed process. `durable` also
    fsyncs the file first, so it survives a power cut too; it costs ~8 ms, which is why
    per-epoch checkpoints of small models ask for it only every few seconds.
    """
    meta = {"format_version": FORMAT_VERSION, **meta}
    payload = {**arrays, "meta": np.array(json.dumps(meta))}
    replace_atomically(path, lambda f: np.savez(f, **payload), durable)  # type: ignore[arg-type]


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and check a checkpoint; any problem is a UserError naming the file."""
    arrays = _read_arrays(path)
    meta_array = arrays.pop("meta", None)
    if meta_array is None:
        raise _invalid(path, "no 'meta' entry")
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise _invalid(path, "'meta' is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except (ValueError, RecursionError):  # not JSON, a number too long, nesting too deep
        raise _invalid(path, "'meta' is not JSON") from None
    if not isinstance(meta, dict):
        raise _invalid(path, "'meta' is not a JSON object")
    version = meta.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise UserError(
            f"{path}: unsupported checkpoint format version {version!r} "
            f"(this mlpcli reads {', '.join(map(str, READABLE_VERSIONS))})"
        )
    _check_model(path, arrays, meta)
    _check_names(path, meta)
    if version == 1:
        _upgrade(arrays, meta)
    _check_pipeline(path, meta)
    return Checkpoint(arrays, meta)


def _upgrade(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A format-1 checkpoint's scaler arrays as the equivalent numbers-only pipeline."""
    names = meta.get("feature_names")
    if names is None:
        names = [f"x{j}" for j in range(meta["sizes"][0])]
        meta["feature_names"] = names
    mean = arrays.pop("scaler.mean", None)
    scale = arrays.pop("scaler.scale", None)
    meta["preprocess"] = preprocess.numeric_only(names, mean, scale)
    meta["format_version"] = FORMAT_VERSION


def _check_pipeline(path: Path, meta: dict[str, Any]) -> None:
    """`meta.preprocess` is a well-formed pipeline whose features are the model's inputs."""
    pipeline = meta.get("preprocess")
    what = preprocess.problem(pipeline)
    if what:
        raise _invalid(path, f"meta 'preprocess': {what}")
    assert isinstance(pipeline, dict)
    features = preprocess.feature_names(pipeline)
    if len(features) != meta["sizes"][0]:
        raise _invalid(
            path,
            f"meta 'preprocess' makes {len(features)} inputs, the model has {meta['sizes'][0]}",
        )
    if meta.get("feature_names", features) != features:
        raise _invalid(path, "meta 'feature_names' differ from those of meta 'preprocess'")


def _invalid(path: Path, what: str) -> UserError:
    return UserError(f"{path}: not a valid checkpoint: {what}")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, refusing anything that is not a plain, readable .npz."""
    if path.exists() and not path.is_file():  # a folder, a device, a FIFO (which would block)
        raise _invalid(path, "not a regular file")
    try:
        with path.open("rb") as f:
            head = f.read(6)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read checkpoint: {exc.strerror}") from None
    if not head:
        raise _invalid(path, "the file is empty")
    if head.startswith(b"\x93NUMPY"):
        raise _invalid(path, "a single .npy array, not an .npz archive")
    if not head.startswith(b"PK"):
        raise _invalid(path, "not an .npz archive")
    _check_unpacked_size(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's message for object arrays
            raise _invalid(path, "it holds pickled objects, which are never loaded") from None
        raise _invalid(path, f"corrupt array data ({exc})") from None
    except MemoryError:
        raise _invalid(path, "an array is too large to load") from None
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, OSError: all unreadable
        raise _invalid(path, f"truncated or corrupt archive ({exc})") from None


def _check_unpacked_size(path: Path) -> None:
    """Refuse an archive that unpacks to more than memory holds (a compressed 'zip bomb')."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _invalid(path, f"truncated or corrupt archive ({exc})") from None
    have = available_bytes()
    if have is not None and unpacked > have:
        raise _invalid(
            path, f"its arrays unpack to {unpacked / 1e9:,.1f} GB, more than the memory available"
        )


def _check_model(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """`sizes`, `activations` and `dtype` describe a model, and the layer arrays match them."""
    sizes = meta.get("sizes")
    if not (
        isinstance(sizes, list) and len(sizes) >= 2 and all(type(s) is int and s > 0 for s in sizes)
    ):
        raise _invalid(path, "meta has no valid 'sizes'")
    activations = meta.get("activations", ["relu"] * (len(sizes) - 2))
    if not (
        isinstance(activations, list)
        and len(activations) == len(sizes) - 2
        and all(isinstance(a, str) and a in ACTIVATIONS for a in activations)
    ):
        raise _invalid(
            path, f"meta 'activations' must name {len(sizes) - 2} of: {', '.join(ACTIVATIONS)}"
        )
    for key, valid, default in (("output", OUTPUTS, "linear"), ("dtype", DTYPES, "float32")):
        value = meta.setdefault(key, default)  # the defaults old checkpoints were written with
        if not (isinstance(value, str) and value in valid):
            raise _invalid(path, f"meta '{key}' {_shown(value)} is not one of {', '.join(valid)}")
    meta["activations"] = activations
    for key in ("epoch", "restart"):
        if key in meta and not is_count(meta[key]):
            raise _invalid(path, f"meta '{key}' {_shown(meta[key])} is not a count (0, 1, 2, ...)")
    for key, kind in (("config", dict), ("metrics", dict), ("target_name", str)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise _invalid(path, f"meta '{key}' is not a {kind.__name__}")
    dtype = np.dtype(meta["dtype"])
    for i, (fi, fo) in enumerate(itertools.pairwise(sizes)):
        for key, shape in ((f"layers.{i}.weight", (fi, fo)), (f"layers.{i}.bias", (fo,))):
            if key not in arrays:
                raise _invalid(path, f"missing '{key}'")
            if arrays[key].shape != shape:
                raise UserError(f"{path}: '{key}' has shape {arrays[key].shape}, meta says {shape}")
            if arrays[key].dtype != dtype:
                raise UserError(f"{path}: '{key}' has dtype {arrays[key].dtype}, meta says {dtype}")
            if not np.isfinite(arrays[key]).all():
                raise UserError(f"{path}: '{key}' holds NaN or infinite values")
    extra = [k for k in arrays if _layer_index(k) >= len(sizes) - 1]
    if extra:
        raise UserError(f"{path}: '{extra[0]}' is a layer meta 'sizes' does not have")
    if ("scaler.mean" in arrays) != ("scaler.scale" in arrays):
        raise _invalid(path, "'scaler.mean' and 'scaler.scale' go together")
    for key in ("scaler.mean", "scaler.scale"):
        if key not in arrays:
            continue
        value = arrays[key]
        if value.shape != (sizes[0],) or value.dtype.kind != "f":
            raise UserError(
                f"{path}: '{key}' has shape {value.shape} and dtype {value.dtype}, "
                f"expected ({sizes[0]},) floats"
            )
        if not np.isfinite(value).all() or (key == "scaler.scale" and (value <= 0).any()):
            raise UserError(f"{path}: '{key}' holds values a standardisation cannot have")


def _layer_index(key: str) -> int:
    """i of `layers.{i}.*`, or -1 for any other key."""
    parts = key.split(".")
    return int(parts[1]) if parts[0] == "layers" and len(parts) == 3 and parts[1].isdigit() else -1


def _check_names(path: Path, meta: dict[str, Any]) -> None:
    """Feature and class names, where present, fit the model's input and output sizes."""
    sizes = meta["sizes"]
    features = meta.get("feature_names")
    if features is not None and not (
        _strings(features) and len(features) == sizes[0] and len(set(features)) == len(features)
    ):
        raise UserError(
            f"{path}: meta 'feature_names' must be {sizes[0]} distinct names, one per input"
        )
    task = meta.get("task")
    if task is not None and task not in ("classification", "regression"):
        raise _invalid(path, f"meta 'task' {_shown(task)} is neither classification nor regression")
    classes: Any = meta.get("class_names")
    if task == "classification":
        expected = 2 if meta.get("output") == "sigmoid" else sizes[-1]
        if not (_strings(classes) and len(classes) == expected):
            raise UserError(
                f"{path}: meta 'class_names' must be {expected} names for a "
                f"{sizes[-1]}-unit {meta.get('output', 'softmax')} output"
            )


def is_count(value: Any) -> bool:
    """A JSON integer >= 0 (not a bool, not a float): an epoch, a restart, a step count."""
    return type(value) is int and 0 <= value < 2**63


def _shown(value: Any) -> str:
    """A value from a file, short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
