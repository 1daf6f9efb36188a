"""Export a saved model, preprocessing included, as an ONNX graph other runtimes load.

One small converter function per piece, in registries (skl2onnx's shape): `PREPROCESS`
turns the fitted input pipeline into the model's input features, `ACTIVATIONS` each hidden
activation, `OUTPUTS` the output activation. Each converter adds its nodes to a `Graph`
and returns the name of the tensor it produced. A test checks that every name the engine
knows has a converter, and that onnxruntime reproduces `mlpcli predict` on every one.

The graph takes the raw columns: one double matrix `features` for all-numeric data (the
columns in the order of `feature_names`, recorded in the model's metadata), else one input
per column (double for numbers, string for categories). It applies the saved pipeline
(fill, scale in double precision as predict does, one-hot), casts to the model's dtype and
runs the layers. Outputs: `probabilities` (one column per class) and `label` (the class
name) for a classifier, `values` for a regression model.

onnx is an optional extra, imported only here and only when an export is asked for.
"""

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpcli import __version__
from mlpcli.data import preprocess
from mlpcli.data.files import MISSING_TOKENS
from mlpcli.errors import UserError
from mlpcli.evaluate import SavedModel, load_model

FORMATS = ("onnx",)
OPSET = 17  # ONNX 1.12 (2022): every runtime of the last years loads it
INSTALL_HINT = 'pip install onnx onnxruntime  (or, in a clone of mlpcli: pip install ".[onnx]")'
GELU_C = float(np.sqrt(2.0 / np.pi))  # as mlpcli.engine.activations (tanh approximation)
LEAKY_SLOPE = 0.01  # as mlpcli.engine.activations
ELU_ALPHA = 1.0


@dataclass
class Graph:
    """The nodes and constants of the graph being built, and a name for every tensor."""

    onnx: Any  # the onnx module
    dtype: np.dtype  # the model's dtype: float32 or float64
    nodes: list[Any] = field(default_factory=list)
    constants: list[Any] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def name(self, hint: str) -> str:
        name, k = hint, 1
        while name in self.used:
            k += 1
            name = f"{hint}_{k}"
        self.used.add(name)
        return name

    def constant(self, hint: str, value: Any, dtype: Any = None) -> str:
        """A constant tensor (an initializer), in the model's dtype unless told."""
        from onnx import numpy_helper

        array = np.asarray(value, dtype=dtype or self.dtype)
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(array, name))
        return name

    def cast(self, x: str) -> str:
        """`x` in the model's dtype."""
        return self.op("Cast", [x], f"{x}.cast", to=self.elem)

    @property
    def elem(self) -> int:
        tensor = self.onnx.TensorProto
        return int(tensor.FLOAT if self.dtype == np.float32 else tensor.DOUBLE)

    def op(self, op_type: str, inputs: list[str], hint: str, **attributes: Any) -> str:
        """Add one node; its single output's name."""
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attributes))
        return out


Converter = Callable[[Graph, str], str]

# ----------------------------------------------------------------------------- preprocessing


def _numeric(graph: Graph, x: str, columns: list[dict[str, Any]]) -> str:
    """Numeric columns `[N, k]` (double): a missing cell (NaN) takes the column's fill value,
    then the z-score; the result in the model's dtype."""
    fills = [c.get("fill") for c in columns]
    if any(f is not None for f in fills):
        fill = graph.constant("fill", [np.nan if f is None else f for f in fills], np.float64)
        x = graph.op("Where", [graph.op("IsNaN", [x], "is_missing"), fill, x], "filled")
    mean = graph.constant("mean", [c["mean"] for c in columns], np.float64)
    scale = graph.constant("scale", [c["scale"] for c in columns], np.float64)
    z = graph.op("Div", [graph.op("Sub", [x, mean], "centred"), scale], "standardized")
    return graph.cast(z)


def _categorical(graph: Graph, x: str, column: dict[str, Any]) -> str:
    """One categorical column `[N, 1]` (strings) as its one-hot block `[N, m]`: the kept
    categories, then `(other)` for the folded ones, then `(missing)`; an unseen category
    (or a missing cell the training data had none of) sets no feature, as `unknown: zeros`."""
    block = preprocess.one_hot_levels(column)
    position = {level: k for k, level in enumerate(block)}
    keys = list(column["categories"])
    values = [position[c] for c in keys]
    if column["other"]:
        keys += column["other"]
        values += [position[preprocess.OTHER]] * len(column["other"])
    if column["missing_level"]:
        spellings = sorted({v for t in MISSING_TOKENS for v in (t, t.upper(), t.title())})
        keys += [t for t in spellings if t not in keys]
        values += [position[preprocess.MISSING]] * (len(keys) - len(values))
    codes = graph.op(
        "LabelEncoder",
        [x],
        f"{column['name']}.code",
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=values,
        default_int64=-1,
    )
    levels = graph.constant(f"{column['name']}.levels", [list(range(len(block)))], np.int64)
    hot = graph.op("Equal", [codes, levels], f"{column['name']}.is")
    return graph.cast(hot)


PREPROCESS: dict[str, Callable[[Graph, str, Any], str]] = {
    "numeric": _numeric,  # all numeric columns at once: one [N, k] matrix
    "categorical": _categorical,  # one column at a time
}


# ----------------------------------------------------------------------------- activations


def _gelu(graph: Graph, z: str) -> str:
    """0.5 z (1 + tanh(c (z + 0.044715 z^3))), PyTorch's GELU(approximate='tanh')."""
    cube = graph.op("Mul", [z, graph.op("Mul", [z, z], "z2")], "z3")
    inner = graph.op("Add", [z, graph.op("Mul", [cube, graph.constant("k", 0.044715)], "kz3")], "u")
    t = graph.op("Tanh", [graph.op("Mul", [inner, graph.constant("c", GELU_C)], "cu")], "t")
    half_z = graph.op("Mul", [z, graph.constant("half", 0.5)], "half_z")
    return graph.op("Mul", [half_z, graph.op("Add", [t, graph.constant("one", 1.0)], "1t")], "gelu")


def _softplus(graph: Graph, z: str) -> str:
    """log(1 + e^z) as max(z, 0) + log(1 + e^-|z|): no overflow for large z (as the engine)."""
    positive = graph.op("Relu", [z], "zpos")
    minus_abs = graph.op("Neg", [graph.op("Abs", [z], "absz")], "negabs")
    tail = graph.op(
        "Log",
        [graph.op("Add", [graph.op("Exp", [minus_abs], "e"), graph.constant("one", 1.0)], "1e")],
        "log1e",
    )
    return graph.op("Add", [positive, tail], "softplus")


ACTIVATIONS: dict[str, Converter] = {
    "relu": lambda g, z: g.op("Relu", [z], "relu"),
    "leaky_relu": lambda g, z: g.op("LeakyRelu", [z], "leaky_relu", alpha=LEAKY_SLOPE),
    "elu": lambda g, z: g.op("Elu", [z], "elu", alpha=ELU_ALPHA),
    "gelu": _gelu,
    "tanh": lambda g, z: g.op("Tanh", [z], "tanh"),
    "sigmoid": lambda g, z: g.op("Sigmoid", [z], "sigmoid"),
    "softplus": _softplus,
    "identity": lambda g, z: z,
}


def _sigmoid_output(graph: Graph, z: str) -> str:
    """One sigmoid unit gives P(class 1); the probabilities are [1 - p, p], as predict."""
    p1 = graph.op("Sigmoid", [z], "p1")
    p0 = graph.op("Sub", [graph.constant("one", 1.0), p1], "p0")
    return graph.op("Concat", [p0, p1], "probabilities_", axis=1)


OUTPUTS: dict[str, Converter] = {
    "softmax": lambda g, z: g.op("Softmax", [z], "probabilities_", axis=1),
    "sigmoid": _sigmoid_output,
    "linear": lambda g, z: z,
}


# ----------------------------------------------------------------------------- the graph


@dataclass
class Exported:
    """What `export` wrote."""

    path: Path
    checkpoint: Path
    inputs: list[str]  # `features`, or one per column
    outputs: list[str]
    n_features: int
    opset: int


def export(source: Path, out: Path, fmt: str = "onnx") -> Exported:
    """Write the final model of a run directory (or a checkpoint) as an ONNX file."""
    if fmt not in FORMATS:
        raise UserError(
            f"--format {fmt}: not a format mlpcli exports (valid: {', '.join(FORMATS)})"
        )
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name such as model.onnx")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    saved = load_model(source)
    model = build_onnx(saved)
    _write_atomic(out, model.SerializeToString())
    return Exported(
        path=out,
        checkpoint=saved.path,
        inputs=[i.name for i in model.graph.input],
        outputs=[o.name for o in model.graph.output],
        n_features=len(saved.feature_names),
        opset=OPSET,
    )


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise UserError(
            "export to ONNX needs the onnx package, which is not installed", hint=INSTALL_HINT
        ) from None
    return onnx


def build_onnx(saved: SavedModel) -> Any:
    """The ONNX model (an `onnx.ModelProto`) of a saved model, checked by onnx.checker."""
    onnx = _onnx()
    helper, TensorProto = onnx.helper, onnx.TensorProto
    dtype = np.dtype(saved.model.dtype)
    graph = Graph(onnx, dtype)
    elem = graph.elem
    h, inputs = _inputs(graph, saved.preprocess)
    arrays = {p.name: p.value for p in saved.model.params}
    n_layers = len(saved.model.sizes) - 1
    for i in range(n_layers):
        w = graph.constant(f"layers.{i}.weight", arrays[f"layers.{i}.weight"])
        b = graph.constant(f"layers.{i}.bias", arrays[f"layers.{i}.bias"])
        h = graph.op("Gemm", [h, w, b], f"z{i}")
        if i < n_layers - 1:
            h = ACTIVATIONS[saved.model.activations[i]](graph, h)
    output = saved.cfg.model.output or "linear"
    result = OUTPUTS[output](graph, h)
    outputs = []
    if saved.class_names is not None:
        probs = graph.op("Identity", [result], "probabilities")
        index = graph.op("ArgMax", [probs], "class_index", axis=1, keepdims=0)
        names = graph.constant("class_names", np.array(saved.class_names, dtype=object), object)
        label = graph.op("Gather", [names, index], "label", axis=0)
        k = len(saved.class_names)
        outputs = [
            helper.make_tensor_value_info(probs, elem, ["N", k]),
            helper.make_tensor_value_info(label, TensorProto.STRING, ["N"]),
        ]
    else:
        values = graph.op("Identity", [result], "values")
        outputs = [helper.make_tensor_value_info(values, elem, ["N", saved.model.sizes[-1]])]
    onnx_graph = helper.make_graph(
        graph.nodes, _graph_name(saved), inputs, outputs, initializer=graph.constants
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="mlpcli",
        producer_version=__version__,
        doc_string=f"exported by mlpcli {__version__} from {saved.path.name}",
    )
    model.ir_version = 8  # the IR of opset 17: loadable by runtimes older than this onnx
    metadata = {
        "feature_names": json.dumps(saved.feature_names),
        "class_names": json.dumps(saved.class_names),
        "task": saved.task,
        "target_name": json.dumps(saved.target_name),
        "missing": "a missing cell (NaN) takes the train fill value; without one it stays NaN",
    }
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model


def _inputs(graph: Graph, pipeline: dict[str, Any]) -> tuple[str, list[Any]]:
    """The graph's inputs and the tensor of the model's input features they make.

    All-numeric data: one double matrix `features`, the columns in feature order. With
    categorical columns: one input per column, named as it, `[N, 1]`: double for a numeric
    column, string for a categorical one.
    """
    helper, tensor = graph.onnx.helper, graph.onnx.TensorProto
    columns = preprocess.used_columns(pipeline)
    numeric = [c for c in columns if c["kind"] == "numeric"]
    if len(numeric) == len(columns):
        graph.used.add("features")
        info = helper.make_tensor_value_info("features", tensor.DOUBLE, ["N", len(numeric)])
        return PREPROCESS["numeric"](graph, "features", numeric), [info]
    inputs, parts = [], []
    for c in columns:
        graph.used.add(c["name"])
        kind = tensor.DOUBLE if c["kind"] == "numeric" else tensor.STRING
        inputs.append(helper.make_tensor_value_info(c["name"], kind, ["N", 1]))
    if numeric:
        names = [c["name"] for c in numeric]
        x = graph.op("Concat", names, "numeric", axis=1) if len(names) > 1 else names[0]
        parts.append(PREPROCESS["numeric"](graph, x, numeric))
    for c in columns:  # the one-hot blocks follow the numbers, in column order
        if c["kind"] == "categorical":
            parts.append(PREPROCESS["categorical"](graph, c["name"], c))
    return graph.op("Concat", parts, "inputs", axis=1) if len(parts) > 1 else parts[0], inputs


def _graph_name(saved: SavedModel) -> str:
    run = saved.path.parent.parent.name if saved.path.parent.name == "checkpoints" else ""
    return run or saved.path.stem


def _write_atomic(path: Path, payload: bytes) -> None:
    """A temporary file next to `path`, then a rename: never a half-written model."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"--out {path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--out {path}: cannot write: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
