"""`mlpcli export --format onnx`: onnxruntime reproduces `mlpcli predict` on every activation.

For every hidden activation and each kind of output (softmax, one sigmoid unit, linear), a
small model is trained, exported and run in onnxruntime on its test split; probabilities
(or values) must equal what `mlpcli predict --proba` prints to 1e-5, labels exactly.
"""

import csv
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpcli import export as exporter
from mlpcli.config import load_config
from mlpcli.engine import ACTIVATIONS, OUTPUTS
from mlpcli.evaluate import load_model, run_split
from mlpcli.runs import train_run
from tests.helpers import write_config

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5

TASKS = {  # output activation -> (data, loss)
    "softmax": ("iris", "cross_entropy"),
    "sigmoid": ("xor", "binary_cross_entropy"),
    "linear": ("diabetes", "mse"),
}


_TRAINED: dict[tuple[Path, str, str, str], Path] = {}


def _train(folder: Path, activation: str, output: str, dtype: str = "float32") -> Path:
    """A 3-epoch run with two hidden layers of `activation` (trained once per module)."""
    key = (folder, activation, output, dtype)
    if key not in _TRAINED:
        _TRAINED[key] = _train_once(folder, activation, output, dtype)
    return _TRAINED[key]


def _train_once(folder: Path, activation: str, output: str, dtype: str) -> Path:
    source, loss = TASKS[output]
    config = write_config(
        folder,
        f"""
name: {activation}-{output}
data: {{source: {source}}}
model:
  hidden: [{{units: 6, activation: {activation}}}, {{units: 5, activation: {activation}}}]
loss: {loss}
optimizer: {{name: adam, lr: 0.01}}
training: {{epochs: 3, batch_size: 32, dtype: {dtype}}}
""",
        name=f"{activation}-{output}-{dtype}.yaml",
    )
    run_dir, _ = train_run(load_config(config), folder / "runs", [])
    return run_dir


def _test_split_csv(run: Path, path: Path) -> np.ndarray:
    """The run's test split as a CSV that predict reads; its raw feature matrix."""
    saved = load_model(run)
    rows = run_split(saved, "test")
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(saved.feature_names)
        writer.writerows([[repr(float(v)) for v in row] for row in rows.X])
    return rows.X.astype(np.float64)


def _predict(cli, run: Path, data: Path, *flags: str) -> list[list[str]]:
    result = cli("predict", run, "--data", data, *flags)
    assert result.exit_code == 0, result.output
    return list(csv.reader(io.StringIO(result.stdout)))


def _onnx_outputs(path: Path, X: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"features": X}), strict=True))


def _check_against_predict(cli, run: Path, tmp_path: Path) -> float:
    """Export `run`, run it in onnxruntime on the test split; the largest difference from
    predict (probabilities; values relative to the largest value)."""
    out = tmp_path / "model.onnx"
    result = cli("export", run, "--format", "onnx", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"to {out}" in result.stdout
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    data = tmp_path / "test.csv"
    X = _test_split_csv(run, data)
    got = _onnx_outputs(out, X)
    saved = load_model(run)
    if saved.class_names is None:
        values = np.array([[float(v) for v in row] for row in _predict(cli, run, data)[1:]])
        assert got["values"].shape == values.shape
        # values are in the target's units (diabetes: 25..346): the difference relative
        # to the largest of them, as float32 rounding scales with the number
        return float(np.abs(got["values"] - values).max() / max(1.0, np.abs(values).max()))
    table = _predict(cli, run, data, "--proba")
    assert table[0] == saved.class_names
    proba = np.array([[float(v) for v in row] for row in table[1:]])
    labels = [row[0] for row in _predict(cli, run, data)[1:]]
    assert got["probabilities"].shape == proba.shape
    assert [str(v) for v in got["label"]] == labels
    return float(np.abs(got["probabilities"] - proba).max())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_onnxruntime_equals_predict_for_every_activation(cli, folder, tmp_path, activation):
    run = _train(folder, activation, "softmax")
    assert _check_against_predict(cli, run, tmp_path) <= TOLERANCE


@pytest.mark.parametrize("output", ["sigmoid", "linear"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_onnxruntime_equals_predict_for_each_task(cli, folder, tmp_path, output, activation):
    run = _train(folder, activation, output)
    assert _check_against_predict(cli, run, tmp_path) <= TOLERANCE


def test_a_float64_model_exports_in_float64(cli, folder, tmp_path):
    run = _train(folder, "tanh", "softmax", dtype="float64")
    assert _check_against_predict(cli, run, tmp_path) <= 1e-12
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_extreme_inputs_do_not_overflow(folder, tmp_path):
    """softplus and sigmoid stay finite where exp would overflow, as the engine does."""
    from mlpcli.evaluate import class_probabilities

    run = _train(folder, "softplus", "softmax")
    exporter.export(run, tmp_path / "m.onnx")
    X = np.array([[1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, -1e4, 1e4], [0.0, 0.0, 0.0, 0.0]])
    got = _onnx_outputs(tmp_path / "m.onnx", X)["probabilities"]
    want = class_probabilities(load_model(run).logits(X))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=TOLERANCE)


def test_every_engine_name_has_a_converter():
    assert set(exporter.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(exporter.OUTPUTS) == set(OUTPUTS)


def test_the_graph_records_feature_and_class_names(folder, tmp_path):
    run = _train(folder, "relu", "softmax")
    exporter.export(run, tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["class_names"] == '["setosa", "versicolor", "virginica"]'
    assert "sepal" in props["feature_names"] and props["task"] == "classification"
    assert [i.name for i in model.graph.input] == ["features"]
    ops = [n.op_type for n in model.graph.node]
    assert ops[:2] == ["Sub", "Div"] and "Softmax" in ops  # scaling first, softmax last


@pytest.mark.parametrize(
    "args,message",
    [
        (["nowhere"], "nowhere: checkpoint not found"),
        (["RUN", "--format", "tflite"], "--format tflite: not a format mlpcli exports"),
        (["RUN", "--out", "."], "is a folder"),
        (["RUN", "--out", "no/such/folder/m.onnx"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, folder, args, message):
    run = _train(folder, "relu", "softmax")
    args = [str(run) if a == "RUN" else a for a in args]
    if "--out" not in args:
        args += ["--out", "m.onnx"]
    result = cli("export", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.output
    assert not Path("m.onnx").exists()


def test_without_onnx_says_how_to_install(cli, folder, monkeypatch, tmp_path):
    run = _train(folder, "relu", "softmax")
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` fail
    result = cli("export", run, "--out", tmp_path / "m.onnx")
    assert result.exit_code == 2
    first, hint = result.stderr.splitlines()
    assert first == "error: export to ONNX needs the onnx package, which is not installed"
    assert 'pip install ".[onnx]"' in hint
    assert not (tmp_path / "m.onnx").exists()


def test_a_damaged_checkpoint_is_refused(cli, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = cli("export", bad, "--out", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "bad.npz: not a valid checkpoint" in result.stderr
