"""`mlpcli export --format onnx`: onnxruntime reproduces `mlpcli predict` on every activation.

For every hidden activation and each kind of output (softmax, one sigmoid unit, linear), a
small model is trained, exported and run in onnxruntime on its test split; probabilities
(or values) must equal what `mlpcli predict --proba` prints to 1e-5, labels exactly.
"""

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpcli import export as exporter
from mlpcli.config import load_config
from mlpcli.data.files import MISSING_TOKENS
from mlpcli.engine import ACTIVATIONS, OUTPUTS
from mlpcli.evaluate import load_model
from mlpcli.runs import train_run
from tests.helpers import ROOT, write_config

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-5

DATA = ROOT / "datasets"
TASKS = {  # output activation -> (data file, target, loss)
    "softmax": ("iris.csv", "target", "cross_entropy"),
    "sigmoid": ("xor.csv", "target", "binary_cross_entropy"),
    "linear": ("diabetes.csv", "target", "mse"),
    "tables": ("penguins.csv", "species", "cross_entropy"),  # categorical columns, NA cells
    "tables-regression": ("houses.csv", "price_k", "mse"),
}


def _split_files(folder: Path, name: str) -> tuple[Path, Path]:
    """The file as train.csv and test.csv (every fifth row), so the test split is a file."""
    out = folder / name.removesuffix(".csv")
    if out.is_dir():
        return out / "train.csv", out / "test.csv"
    out.mkdir()
    if name == "xor.csv":
        rng = np.random.default_rng(0)
        x = rng.choice([-1.0, 1.0], (200, 2)) + rng.normal(0, 0.1, (200, 2))
        lines = ["x0,x1,target"] + [f"{a:.6f},{b:.6f},{int(a * b < 0)}" for a, b in x]
    else:
        lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    (out / "train.csv").write_text("\n".join([header, *[r for i, r in enumerate(rows) if i % 5]]))
    (out / "test.csv").write_text("\n".join([header, *rows[::5]]))
    sidecar = DATA / name.replace(".csv", ".classes.txt")
    if sidecar.is_file():  # iris: class names for the codes 0, 1, 2
        (out / "train.classes.txt").write_text(sidecar.read_text(encoding="utf-8"))
    return out / "train.csv", out / "test.csv"


_TRAINED: dict[tuple[Path, str, str, str], Path] = {}


def _train(folder: Path, activation: str, output: str, dtype: str = "float32") -> Path:
    """A 3-epoch run with two hidden layers of `activation` (trained once per module)."""
    key = (folder, activation, output, dtype)
    if key not in _TRAINED:
        _TRAINED[key] = _train_once(folder, activation, output, dtype)
    return _TRAINED[key]


def _train_once(folder: Path, activation: str, output: str, dtype: str) -> Path:
    name, target, loss = TASKS[output]
    train, test = _split_files(folder, name)
    config = write_config(
        folder,
        f"""
name: {activation}-{output}
data: {{train: {train}, test: {test}, target: {target}, missing: median}}
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


def _feeds(session, path: Path) -> dict[str, np.ndarray]:
    """The graph's inputs from a CSV: `features` (numbers, in feature order), or one input
    per column (numbers as doubles, NaN where missing; categories as their text)."""
    with path.open(newline="") as f:
        table = list(csv.DictReader(f))

    def number(text: str) -> float:
        return float("nan") if text.strip().lower() in MISSING_TOKENS else float(text)

    inputs = session.get_inputs()
    if [i.name for i in inputs] == ["features"]:
        names = json.loads(session.get_modelmeta().custom_metadata_map["feature_names"])
        return {"features": np.array([[number(row[n]) for n in names] for row in table])}
    feeds = {}
    for i in inputs:
        if i.type == "tensor(string)":
            feeds[i.name] = np.array([[row[i.name].strip()] for row in table], dtype=object)
        else:
            feeds[i.name] = np.array([[number(row[i.name])] for row in table])
    return feeds


def _predict(cli, run: Path, data: Path, *flags: str) -> list[list[str]]:
    result = cli("predict", run, "--data", data, *flags)
    assert result.exit_code == 0, result.output
    return list(csv.reader(io.StringIO(result.stdout)))


def _onnx_outputs(path: Path, data: Path) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, _feeds(session, data)), strict=True))


def _check_against_predict(cli, run: Path, tmp_path: Path) -> float:
    """Export `run`, run it in onnxruntime on the test split; the largest difference from
    predict (probabilities; values relative to the largest value)."""
    out = tmp_path / "model.onnx"
    result = cli("export", run, "--format", "onnx", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"to {out}" in result.stdout
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    saved = load_model(run)
    data = Path(saved.cfg.data.test or "")
    got = _onnx_outputs(out, data)
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


@pytest.mark.parametrize("output", ["sigmoid", "linear", "tables", "tables-regression"])
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
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got, _) = session.run(None, {"features": X})
    saved = load_model(run)
    columns = saved.preprocess["columns"]
    scaled = (X - [c["mean"] for c in columns]) / [c["scale"] for c in columns]
    want = class_probabilities(saved.logits(scaled))
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
    assert "sepal_length_cm" in props["feature_names"] and props["task"] == "classification"
    assert [i.name for i in model.graph.input] == ["features"]
    ops = [n.op_type for n in model.graph.node]
    # missing cells filled, then scaled, before the first layer; softmax at the end
    assert ops[: ops.index("Gemm")] == ["IsNaN", "Where", "Sub", "Div", "Cast"]
    assert ops.index("Softmax") > len(ops) - 5


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
