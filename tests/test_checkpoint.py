"""Checkpoints that cannot hurt you: every broken file is one `error:` line and exit code 2,
never a traceback, never unpickling; writes are atomic (docs/runs.md)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpcli.checkpoint import load_checkpoint, save_checkpoint
from mlpcli.config import load_config
from mlpcli.errors import UserError
from mlpcli.runs import train_run
from tests.helpers import IRIS_MINIMAL, write_config


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    cfg = load_config(write_config(folder, IRIS_MINIMAL + "training: {epochs: 2}\n"))
    run, _ = train_run(cfg, folder / "runs", [])
    return run / "checkpoints" / "last.npz"


def _parts(good: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("meta")))


def _write(path: Path, arrays: dict, meta) -> Path:
    meta_array = meta if isinstance(meta, np.ndarray) else np.array(json.dumps(meta))
    np.savez(path, **arrays, meta=meta_array)
    return path


def _edit_meta(**changes):
    def edit(arrays, meta):
        meta.update(changes)
        return arrays, meta

    return edit


def _edit_array(key, make):
    def edit(arrays, meta):
        if make is None:
            del arrays[key]
        else:
            arrays[key] = make(arrays[key])
        return arrays, meta

    return edit


def _edit_column(i, **changes):
    def edit(arrays, meta):
        meta["preprocess"]["columns"][i].update(changes)
        return arrays, meta

    return edit


def _edit_pipeline(**changes):
    def edit(arrays, meta):
        meta["preprocess"].update(changes)
        return arrays, meta

    return edit


def _v1(change):
    """A format-1 checkpoint (scaler arrays, no meta.preprocess), changed by `change`."""

    def edit(arrays, meta):
        meta["format_version"] = 1
        del meta["preprocess"]
        return change(arrays), meta

    return edit


EDITS = {
    "no meta": (lambda a, m: (a, None), "no 'meta' entry"),
    "meta not JSON": (lambda a, m: (a, np.array("{not json")), "'meta' is not JSON"),
    "meta a number": (lambda a, m: (a, np.arange(3)), "'meta' is not a JSON string"),
    "meta a list": (lambda a, m: (a, np.array("[1, 2]")), "not a JSON object"),
    "meta nested": (lambda a, m: (a, np.array("[" * 100_000)), "'meta' is not JSON"),
    "unknown version": (_edit_meta(format_version=99), "format version 99"),
    "no version": (_edit_meta(format_version=None), "format version None"),
    "missing bias": (_edit_array("layers.1.bias", None), "missing 'layers.1.bias'"),
    "wrong shape": (_edit_array("layers.0.weight", lambda w: w[:, :5]), "meta says (4, 32)"),
    "wrong dtype": (_edit_array("layers.0.bias", lambda b: b.astype(np.float64)), "dtype"),
    "NaN weights": (_edit_array("layers.1.weight", lambda w: w * np.nan), "NaN or infinite"),
    "extra layer": (_edit_array("layers.0.bias", lambda b: b), None),  # placeholder, see below
    "bad sizes": (_edit_meta(sizes=[4, "32", 3]), "no valid 'sizes'"),
    "bad activation": (_edit_meta(activations=["swish"]), "'activations' must name 1 of"),
    "bad output": (_edit_meta(output="softplus"), "meta 'output'"),
    "bad dtype": (_edit_meta(dtype="object"), "meta 'dtype' 'object'"),
    "classes": (_edit_meta(class_names=["a", "b"]), "'class_names' must be 3 names"),
    "features": (_edit_meta(feature_names=["a", "a", "b", "c"]), "'feature_names' must be 4"),
    "v1 bad scaler": (
        _v1(lambda a: {**a, "scaler.mean": np.zeros(4), "scaler.scale": np.zeros(4)}),
        "cannot have",
    ),
    "v1 half scaler": (_v1(lambda a: {**a, "scaler.mean": np.zeros(4)}), "go together"),
    "no preprocess": (_edit_meta(preprocess=None), "meta 'preprocess'"),
    "preprocess a list": (_edit_meta(preprocess=[1, 2]), "meta 'preprocess'"),
    "zero scale": (_edit_column(0, scale=0.0), "'scale' must be positive"),
    "NaN-like mean": (_edit_column(1, mean="nan"), "'mean' and 'scale' must be finite"),
    "bad fill": (_edit_column(2, fill=[1]), "'fill' must be a finite number"),
    "bad kind": (_edit_column(3, kind="ordinal"), "kind 'ordinal'"),
    "nameless column": (_edit_column(0, name=7), "not an object with a 'name'"),
    "twice": (_edit_column(1, name="sepal_length_cm"), "appears twice"),
    "categories": (
        _edit_column(0, kind="categorical", categories="abc", other=[], missing_level=False),
        "'categories' must be a list",
    ),
    "too many inputs": (
        _edit_column(0, kind="categorical", categories=["a", "b"], other=[], missing_level=False),
        "makes 5 inputs, the model has 4",
    ),
    "bad version": (_edit_pipeline(version=7), "unsupported version 7"),
    "bad policy": (_edit_pipeline(missing="guess"), "'missing' is not one of"),
    "bad unknown": (_edit_pipeline(unknown="other"), "'unknown' is neither"),
    "bad task": (_edit_meta(task="ranking"), "meta 'task'"),
    "bad config": (_edit_meta(config={"data": {"source": "x"}, "lr": 1}), "unknown key 'lr'"),
}
EDITS["extra layer"] = (
    lambda a, m: ({**a, "layers.2.weight": a["layers.1.weight"]}, m),
    "'layers.2.weight' is a layer meta 'sizes' does not have",
)


def _one_error_line(result, path: Path, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}") and expected in lines[0], lines[0]


@pytest.mark.parametrize("case", list(EDITS))
def test_inconsistent_checkpoints_exit_2_naming_the_file(cli, good, tmp_path, case):
    edit, expected = EDITS[case]
    arrays, meta = edit(*_parts(good))
    path = tmp_path / "broken.npz"
    if meta is None:
        np.savez(path, **arrays)
    else:
        _write(path, arrays, meta)
    _one_error_line(cli("eval", path), path, expected)


BYTES = {
    "empty": (lambda b: b"", "the file is empty"),
    "half": (lambda b: b[: len(b) // 2], "truncated or corrupt"),
    "tail cut": (lambda b: b[:-7], "truncated or corrupt"),
    "text": (lambda b: b"layers.0.weight = [1, 2, 3]\n", "not an .npz archive"),
    "flipped": (lambda b: b[:300] + bytes(x ^ 0xFF for x in b[300:340]) + b[340:], "corrupt"),
}


@pytest.mark.parametrize("case", list(BYTES))
def test_unreadable_files_exit_2(cli, good, tmp_path, case):
    damage, expected = BYTES[case]
    path = tmp_path / "broken.npz"
    path.write_bytes(damage(good.read_bytes()))
    _one_error_line(cli("eval", path), path, expected)
    _one_error_line(cli("predict", path, "--data", "x.csv"), path, expected)


def test_a_single_npy_array_is_refused(cli, tmp_path):
    path = tmp_path / "weights.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((4, 3)))
    _one_error_line(cli("eval", path), path, "a single .npy array")


def test_pickled_objects_are_never_loaded(cli, good, tmp_path):
    arrays, meta = _parts(good)
    path = tmp_path / "evil.npz"

    class Boom:
        def __reduce__(self):
            return (print, ("this would run",))

    np.savez(path, **arrays, meta=np.array(json.dumps(meta)), evil=np.array([Boom()]))
    _one_error_line(cli("eval", path), path, "pickled objects")
    result = cli("train", "--resume", tmp_path)  # not a run directory either
    assert result.exit_code == 2


def test_a_resume_checkpoint_with_a_broken_state_exits_2(cli, good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good.parent.parent, run)
    good = run / "checkpoints" / "last.npz"
    arrays, meta = _parts(good)
    arrays["resume.best_weights"] = arrays["resume.best_weights"][:-1]
    _write(good, arrays, meta)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    result = cli("train", "--resume", run)
    _one_error_line(result, good, "'resume.best_weights' has shape")
    del meta["resume"]
    _write(good, arrays, meta)
    _one_error_line(cli("train", "--resume", run), good, "has no resume state")


def test_save_is_atomic_a_failed_write_leaves_the_previous_file(good, tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    arrays, meta = _parts(good)
    save_checkpoint(path, arrays, meta)
    before = path.read_bytes()

    def dies_half_way(f, **payload):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt  # as a second Ctrl-C would

    monkeypatch.setattr(np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, arrays, meta)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]  # no temporary file left
    assert load_checkpoint(path).meta["epoch"] == meta["epoch"]


def test_format_1_checkpoints_still_load_and_predict(cli, good, tmp_path):
    arrays, meta = _parts(good)
    columns = meta.pop("preprocess")["columns"]
    meta["format_version"] = 1
    arrays["scaler.mean"] = np.array([c["mean"] for c in columns])
    arrays["scaler.scale"] = np.array([c["scale"] for c in columns])
    old = _write(tmp_path / "old.npz", arrays, meta)
    ckpt = load_checkpoint(old)
    assert ckpt.meta["preprocess"]["columns"] == columns
    assert "scaler.mean" not in ckpt.arrays
    iris = Path(__file__).parent.parent / "datasets" / "iris.csv"
    before, after = cli("predict", good, "--data", iris), cli("predict", old, "--data", iris)
    assert after.exit_code == 0 and after.stdout == before.stdout


def test_load_checkpoint_round_trips(good):
    ckpt = load_checkpoint(good)
    assert ckpt.meta["format_version"] == 2
    assert set(ckpt.weights()) == {f"layers.{i}.{k}" for i in (0, 1) for k in ("weight", "bias")}
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(good.with_name("nope.npz"))
