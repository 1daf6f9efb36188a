"""Random damage to a run directory and its checkpoints: compare, eval and --resume answer
with a result or one error line (exit 0, 1 or 2), never a traceback."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import copy_run, invoke, read_npz, write_npz

FILES = [
    "summary.json",
    "config.yaml",
    "metrics.csv",
    "checkpoints/last.npz",
    "checkpoints/best.npz",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def damage(draw):
    """(file, kind, details): what to do to one file of the run."""
    name = draw(st.sampled_from(FILES))
    kinds = ["truncate", "garbage", "delete"]
    kinds += ["meta", "array"] if name.endswith(".npz") else []
    kinds += ["json"] if name == "summary.json" else []
    return name, draw(st.sampled_from(kinds)), draw(st.data())


def _apply(run: Path, name: str, kind: str, data) -> None:
    path = run / name
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))])
    elif kind == "garbage":
        path.write_bytes(data.draw(st.binary(max_size=64)))
    elif kind == "json":
        summary = json.loads(path.read_text())
        key = data.draw(st.sampled_from([*summary, "extra"]))
        if data.draw(st.booleans()):
            summary.pop(key, None)
        else:
            summary[key] = data.draw(json_values)
        path.write_text(json.dumps(summary))
    elif kind == "meta":
        arrays, meta = read_npz(path)
        node = meta
        nested = sorted(k for k, v in meta.items() if isinstance(v, dict) and v)
        if data.draw(st.booleans()):
            node = meta[data.draw(st.sampled_from(nested))]
        key = data.draw(st.sampled_from(sorted(node)))
        if data.draw(st.booleans()):
            del node[key]
        else:
            node[key] = data.draw(json_values)
        write_npz(path, arrays, meta)
    else:  # array
        arrays, meta = read_npz(path)
        key = data.draw(st.sampled_from(sorted(k for k in arrays if k != "meta")))
        shape = tuple(data.draw(st.lists(st.integers(0, 5), max_size=2)))
        dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
        fills = [0, 1, -1] + ([np.nan] if np.issubdtype(dtype, np.floating) else [])
        arrays[key] = np.full(shape, data.draw(st.sampled_from(fills)), dtype)
        if data.draw(st.booleans()):
            del arrays[key]
        write_npz(path, arrays, meta)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    damages=st.lists(damage(), min_size=1, max_size=2),
    status=st.sampled_from(["interrupted", None]),
)
def test_damaged_runs_never_traceback(hostile_run, damages, status):
    with tempfile.TemporaryDirectory() as tmp:
        run = copy_run(hostile_run, Path(tmp) / "run", status=status)
        for i, (name, kind, data) in enumerate(damages):
            if i and kind in ("json", "meta", "array"):
                kind = "truncate"  # a file damaged once may no longer parse
            if (run / name).exists():
                _apply(run, name, kind, data)
        commands = (["compare", run], ["compare", "--json", run], ["eval", run])
        for args in (*commands, ["train", "--resume", run, "-q"]):
            result = invoke(args)
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                args,
                damages,
                result.exception,
            )
            assert result.exit_code in (0, 1, 2), (args, result.output)
            assert "Traceback" not in result.output
            if result.exit_code == 2:
                lines = result.stderr.strip().splitlines()
                assert lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
        shutil.rmtree(run)
