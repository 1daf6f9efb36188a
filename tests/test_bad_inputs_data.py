"""Hostile and broken data tables (issue 13, classes 4-6): paths, sizes and cell values.

Every case exits with code 2 and one `error:` line (a `hint:` line may follow) that names the
culprit, never a traceback, never a run directory; memory stays bounded (a device is never
read, a size is estimated before anything is allocated).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT

IRIS = ROOT / "datasets" / "iris.csv"
LONG = "x" * 300 + ".csv"  # longer than a file name may be (255 bytes)
PETS = "kind,id,colour,weight,legs\n" + "".join(
    f"{'cat' if i % 2 else 'dog'},P{i:03d},{['black', 'white'][i % 3 == 0]},"
    f"{(4 if i % 2 else 20) + i % 5 * 0.1:.1f},{4 - (i % 7 == 0)}\n"
    for i in range(40)
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Two finished runs (iris in float32, a table with a text column) and the bad files."""
    from typer.testing import CliRunner

    from mlpcli.cli import app

    root = tmp_path_factory.mktemp("bad-data")
    (root / "pets.csv").write_text(PETS)
    for name, text in {
        "iris.yaml": f"data: {{source: {IRIS}}}\ntraining: {{epochs: 2}}\n",
        "pets.yaml": "data: {source: pets.csv, target: kind}\ntraining: {epochs: 2}\n",
    }.items():
        (root / name).write_text(text)
        runs = root / f"runs-{Path(name).stem}"
        result = CliRunner().invoke(app, ["train", str(root / name), "--runs-dir", str(runs), "-q"])
        assert result.exit_code == 0, result.output
    _write_files(root)
    return root


def _iris_run(root: Path) -> Path:
    return next((root / "runs-iris").iterdir())


def _pets_run(root: Path) -> Path:
    return next((root / "runs-pets").iterdir())


HEADER = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,target\n"


def _write_files(root: Path) -> None:
    files = {
        "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        "latin1.csv": "a,b,y\n1,2,caf\xe9\n".encode("latin-1"),
        "nul.csv": b"a,b,y\n1,2\x00,3\n",
        "garbage.npz": b"PK\x03\x04 this is not a zip archive",
        "garbage.parquet": b"PAR1 not really",
        "empty.parquet": b"",
        "underscore.csv": "a,b,y\n1,5_0,0\n2,3,1\n",
        "hex.csv": "a,b,y\n1,0x10,0\n2,3,1\n",
        "arabic.csv": "a,b,y\n1,\u0661\u0662,0\n2,3,1\n",
        "infinity.csv": "a,b,y\n1,2,0\n2,infinity,1\n",
        "neg-inf.csv": "a,b,y\n1,2,0\n2,-inf,1\n",
        "big32.csv": "a,b,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(9)) + "1,1e308,0\n",
        "neg-big32.csv": "a,b,y\n"
        + "".join(f"{i},{i},{i % 2}\n" for i in range(9))
        + "1,-4e38,1\n",
        "big64.csv": "a,b,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(9)) + "1,1e200,1\n",
        "collide.csv": "a,y\n" + "".join(f"{i},{['1e300', '2e300'][i % 2]}\n" for i in range(10)),
        "collide53.csv": "a,y\n"
        + "".join(f"{i},{['9007199254740993', '9007199254740992'][i % 2]}\n" for i in range(10)),
        "target-5_0.csv": "a,y\n" + "".join(f"{i},{i}.5\n" for i in range(9)) + "9,5_0\n",
        "control-cell.csv": "a,b,y\n1,2,0\n2,\x1b[31mred,1\n",
        "control-header.csv": "a,b\x07,y\n1,2,0\n",
        "all-missing.csv": "a,b,y\n1,,0\n2,NA,1\n3,,0\n4,?,1\n",
        "missing-target.csv": "a,y\n1,0\n2,\n3,1\n",
        "dup-header.csv": "a,b,a,y\n1,2,3,0\n",
        "ragged.csv": "a,b,y\n1,2,0\n3,4\n",
        "one-column.csv": "a b y\n1 2 0\n",
        "numbers-header.csv": "1,2,3\n4,5,6\n",
        "empty.csv": "",
        "header-only.csv": "a,b,y\n",
        "quote.csv": 'a,b,y\n1,"2,0\n',
        "single-class.csv": "a,y\n1,x\n2,x\n3,x\n",
        "iris-big.csv": HEADER + "5.1,3.5,1e39,0.2,setosa\n",
        "iris-5_0.csv": HEADER + "5.1,3.5,1_4,0.2,setosa\n",
        "iris-unknown-class.csv": HEADER + "5.1,3.5,1.4,0.2,\x1b[2Jtulip\n",
        "iris-missing.csv": HEADER + "5.1,,1.4,0.2,setosa\n",
        "iris-no-target.csv": HEADER.replace(",target", "") + "5.1,3.5,1.4,0.2\n",
        "iris-dup.csv": HEADER.replace("target", "sepal_width_cm") + "5.1,3.5,1.4,0.2,3\n",
        "pets-new.csv": "weight,colour,legs\n4,black,4\n",
        "pets-text-weight.csv": "weight,colour,legs\nheavy,black,4\n",
        "pets-control.csv": "weight,colour,legs\n4,\x1b]0;pwned\x07,4\n",
    }
    for name, content in files.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    # 100,000 columns with the duplicate at the very end: the check must be linear
    wide = [f"c{j}" for j in range(100_000)] + ["c99999", "y"]
    (root / "wide-dup.csv").write_text(",".join(wide) + "\n" + ",".join(["1"] * 100_002) + "\n")
    (root / "a-folder.csv").mkdir()
    # sidecars that are not text files
    for name, make in {
        "side-dir": lambda p: p.mkdir(),
        "side-bin": lambda p: p.write_bytes(b"\x00\x01\x02setosa"),
        "side-dev": lambda p: p.symlink_to("/dev/zero"),
    }.items():
        (root / f"{name}.csv").write_text("a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n")
        make(root / f"{name}.classes.txt")
    os.mkfifo(root / "fifo.csv")
    _strangers(root)


def _strangers(root: Path) -> None:
    """Checkpoints whose stored data path points somewhere it should not."""
    best = _iris_run(root) / "checkpoints" / "best.npz"
    with np.load(best, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    for name, source in {
        "stranger-dev": "/dev/zero",
        "stranger-long": str(root / LONG),
        "stranger-dir": str(root / "a-folder.csv"),
        "stranger-fifo": str(root / "fifo.csv"),
        "stranger-binary": str(root / "binary.csv"),
    }.items():
        meta["config"]["data"]["source"] = source
        np.savez(root / f"{name}.npz", **arrays, meta=np.array(json.dumps(meta)))


def _cfg(root: Path, name: str, data: str, rest: str = "training: {epochs: 2}\n") -> str:
    path = root / f"{name}.yaml"
    path.write_text(f"data: {data}\n{rest}")
    return str(path)


def _train(data: str, rest: str = "training: {epochs: 2}\n"):
    return lambda r: ["train", _cfg(r, f"c{abs(hash(data + rest))}", data, rest)]


def _predict(run, name: str, *more: str):
    return lambda r: ["predict", str(run(r)), "--data", str(r / name), *more]


def _eval(run, name: str):
    return lambda r: ["eval", str(run(r)), "--data", str(r / name)]


CASES = [
    # --- paths: devices, folders, long names, binaries (class 4)
    ("source-dev-zero", _train("{source: /dev/zero}"), ["/dev/zero", "not a regular file"]),
    ("source-dev-null", _train("{source: /dev/null}"), ["/dev/null", "not a regular file"]),
    ("source-fifo", _train("{source: fifo.csv}"), ["fifo.csv", "not a regular file"]),
    ("source-long-name", _train(f"{{source: {LONG}}}"), ["xxxx", "File name too long"]),
    ("source-folder", _train("{source: a-folder.csv}"), ["a-folder.csv", "is a folder"]),
    ("source-binary", _train("{source: binary.csv}"), ["binary.csv", "a binary file"]),
    ("source-nul", _train("{source: nul.csv}"), ["nul.csv", "a binary file"]),
    ("source-latin1", _train("{source: latin1.csv}"), ["latin1.csv", "cannot read CSV"]),
    ("source-garbage-npz", _train("{source: garbage.npz}"), ["garbage.npz", "cannot read NPZ"]),
    (
        "source-garbage-parquet",
        _train("{source: garbage.parquet}"),
        ["garbage.parquet", "cannot read Parquet"],
    ),
    ("source-empty-parquet", _train("{source: empty.parquet}"), ["empty.parquet", "Parquet"]),
    ("train-file-dev", _train("{train: /dev/zero}"), ["/dev/zero", "not a regular file"]),
    ("val-file-dev", _train(f"{{train: {IRIS}, val: /dev/zero}}"), ["/dev/zero", "regular"]),
    ("test-file-folder", _train(f"{{train: {IRIS}, test: a-folder.csv}}"), ["is a folder"]),
    ("sidecar-folder", _train("{source: side-dir.csv}"), ["side-dir.classes.txt", "is a folder"]),
    ("sidecar-binary", _train("{source: side-bin.csv}"), ["side-bin.classes.txt", "binary"]),
    ("sidecar-device", _train("{source: side-dev.csv}"), ["side-dev.classes.txt", "regular"]),
    ("predict-dev-zero", _predict(_iris_run, "/dev/zero"), ["/dev/zero", "not a regular file"]),
    (
        "predict-dev-urandom",
        lambda r: ["predict", str(_iris_run(r)), "--data", "/dev/urandom"],
        ["/dev/urandom", "not a regular file"],
    ),
    ("predict-long-name", _predict(_iris_run, LONG), ["File name too long"]),
    ("predict-folder", _predict(_iris_run, "a-folder.csv"), ["is a folder"]),
    ("predict-binary", _predict(_iris_run, "binary.csv"), ["binary.csv", "a binary file"]),
    ("predict-fifo", _predict(_iris_run, "fifo.csv"), ["fifo.csv", "not a regular file"]),
    ("eval-dev-zero", _eval(_iris_run, "/dev/zero"), ["/dev/zero", "not a regular file"]),
    ("eval-long-name", _eval(_iris_run, LONG), ["File name too long"]),
    ("eval-binary", _eval(_iris_run, "nul.csv"), ["nul.csv", "binary"]),
    ("inspect-dev-zero", lambda r: ["inspect", "/dev/zero"], ["/dev/zero", "regular file"]),
    ("inspect-long", lambda r: ["inspect", str(r / LONG)], ["File name too long"]),
    ("inspect-folder", lambda r: ["inspect", str(r / "a-folder.csv")], ["is a folder"]),
    ("inspect-binary", lambda r: ["inspect", str(r / "binary.csv")], ["binary"]),
    # a stranger's checkpoint names a data path: only files are opened, and it says so
    (
        "stranger-dev-zero",
        lambda r: ["eval", str(r / "stranger-dev.npz")],
        ["/dev/zero", "not a regular file", "stored in", "--data"],
    ),
    (
        "stranger-long",
        lambda r: ["eval", str(r / "stranger-long.npz")],
        ["File name too long", "stored in", "--data"],
    ),
    (
        "stranger-folder",
        lambda r: ["eval", str(r / "stranger-dir.npz"), "--split", "val"],
        ["is a folder", "stored in"],
    ),
    ("stranger-fifo", lambda r: ["eval", str(r / "stranger-fifo.npz")], ["regular", "stored in"]),
    (
        "stranger-binary",
        lambda r: ["eval", str(r / "stranger-binary.npz")],
        ["binary", "stored in", "--data"],
    ),
    # --- sizes (class 5)
    (
        "generator-n-huge",
        _train("{source: spirals, generator: {n: 1000000000000}}"),
        ["generated 'spirals'", "need about", "more than this machine has"],
    ),
    (
        "generator-n-huge-xor",
        _train("{source: xor, generator: {n: 100000000000}}"),
        ["generated 'xor'", "lower data.generator.n"],
    ),
    (
        "generator-friedman-wide",
        _train("{source: friedman1, generator: {n: 100000000, features: 10000}}", "loss: mse\n"),
        ["generated 'friedman1'", "10,001 columns"],
    ),
    ("generator-n-float", _train("{source: moons, generator: {n: 1e12}}"), ["n"]),
    ("wide-duplicate", _train("{source: wide-dup.csv}"), ["wide-dup.csv:1", "'c99999'", "twice"]),
    # --- cell values (class 6)
    (
        "cell-underscore",
        _train("{source: underscore.csv, columns: {b: numeric}}"),
        ["underscore.csv:2", "'5_0'", "'b'"],
    ),
    ("cell-hex", _train("{source: hex.csv, columns: {b: numeric}}"), ["hex.csv:2", "'0x10'"]),
    (
        "cell-arabic-digits",
        _train("{source: arabic.csv, columns: {b: numeric}}"),
        ["arabic.csv:2", "'b'"],
    ),
    ("cell-infinity", _train("{source: infinity.csv}"), ["infinity.csv:3", "not finite"]),
    ("cell-neg-inf", _train("{source: neg-inf.csv}"), ["neg-inf.csv:3", "-inf", "not finite"]),
    (
        "cell-1e308-float32",
        _train("{source: big32.csv, split: {stratify: false}}"),
        ["big32.csv:11", "1e+308", "'b'", "float32"],
    ),
    (
        "cell-minus-4e38-float32",
        _train("{source: neg-big32.csv, split: {stratify: false}}"),
        ["neg-big32.csv:11", "'b'", "float32"],
    ),
    (
        "cell-1e200-float64",
        _train("{source: big64.csv, split: {stratify: false}}", "training: {dtype: float64}\n"),
        ["big64.csv:11", "1e+200", "float64"],
    ),
    (
        "predict-1e39-float32",
        _predict(_iris_run, "iris-big.csv"),
        ["iris-big.csv:2", "petal_length_cm", "float32"],
    ),
    (
        "predict-underscore",
        _predict(_iris_run, "iris-5_0.csv"),
        ["iris-5_0.csv:2", "'1_4'", "petal_length_cm"],
    ),
    ("labels-collide-1e300", _train("{source: collide.csv}"), ["collide.csv", "1e300", "2**53"]),
    ("labels-collide-2-53", _train("{source: collide53.csv}"), ["collide53.csv", "2**53"]),
    (
        "regression-target-underscore",
        _train("{source: target-5_0.csv}", "loss: mse\n"),
        ["target-5_0.csv:11", "'5_0'", "regression needs numbers"],
    ),
    (
        "control-chars-in-cell",
        _train("{source: control-cell.csv, columns: {b: numeric}}"),
        ["control-cell.csv:3", "\\x1b[31mred"],
    ),
    (
        "control-chars-in-header",
        _train("{source: control-header.csv, target: z}"),
        ["target column 'z' not found", "b\\x07"],
    ),
    (
        "control-chars-in-class",
        _eval(_iris_run, "iris-unknown-class.csv"),
        ["iris-unknown-class.csv:2", "\\x1b[2Jtulip"],
    ),
    (
        "control-chars-in-category",
        lambda r: (
            [
                "predict",
                str(_pets_run(r)),
                "--data",
                str(r / "pets-control.csv"),
                "--keep",
                "\x1bbad",
            ]
        ),
        ["--keep column '\\x1bbad' not found"],
    ),
    # --- tables and the pipeline (issue 14)
    (
        "declared-numeric-text",
        _predict(_pets_run, "pets-text-weight.csv"),
        ["pets-text-weight.csv:2", "'heavy'", "numeric column 'weight'"],
    ),
    (
        "unknown-kind",
        _train("{source: pets.csv, target: kind, columns: {id: ordinal}}"),
        ["data.columns.id", "ordinal"],
    ),
    (
        "max-categories-zero",
        _train("{source: pets.csv, target: kind, categorical: {max_categories: 0}}"),
        ["max_categories"],
    ),
    (
        "unknown-policy",
        _train("{source: pets.csv, target: kind, categorical: {unknown: other}}"),
        ["unknown"],
    ),
    ("missing-policy", _train("{source: pets.csv, target: kind, missing: zero}"), ["missing"]),
    (
        "columns-typo",
        _train("{source: pets.csv, target: kind, columns: {colour: categorical, wieght: numeric}}"),
        ["'wieght'", "did you mean 'weight'"],
    ),
    (
        "columns-target",
        _train("{source: pets.csv, target: kind, columns: {kind: categorical}}"),
        ["'kind' is the target"],
    ),
    (
        "columns-ignore-listed",
        _train("{source: pets.csv, target: kind, features: [weight], columns: {weight: ignore}}"),
        ["'weight'"],
    ),
    ("columns-for-generator", _train("{source: xor, columns: {x0: numeric}}"), ["data.columns"]),
    (
        "all-missing-column",
        _train("{source: all-missing.csv, missing: mean}"),
        ["all-missing.csv", "'b' has no values"],
    ),
    ("missing-error", _train("{source: all-missing.csv}"), ["all-missing.csv:2", "'b'"]),
    ("missing-target", _train("{source: missing-target.csv}"), ["missing-target.csv:3", "target"]),
    ("single-class", _train("{source: single-class.csv}"), ["single class"]),
    ("duplicate-header", _train("{source: dup-header.csv}"), ["dup-header.csv:1", "'a'", "twice"]),
    ("ragged-row", _train("{source: ragged.csv}"), ["ragged.csv:3", "2 fields"]),
    ("one-column", _train("{source: one-column.csv}"), ["only one column"]),
    ("numbers-header", _train("{source: numbers-header.csv}"), ["only numbers"]),
    ("empty-csv", _train("{source: empty.csv}"), ["empty.csv", "empty"]),
    ("header-only", _train("{source: header-only.csv}"), ["no data rows"]),
    ("unclosed-quote", _train("{source: quote.csv}"), ["quote.csv"]),
    ("eval-missing-target", _eval(_iris_run, "iris-no-target.csv"), ["target column 'target'"]),
    (
        "eval-missing-cell",
        _eval(_iris_run, "iris-missing.csv"),
        ["iris-missing.csv:2", "sepal_width_cm"],
    ),
    ("eval-duplicate-column", _eval(_iris_run, "iris-dup.csv"), ["'sepal_width_cm'", "twice"]),
    ("predict-missing-column", _predict(_pets_run, "iris-big.csv"), ["'colour' not found"]),
    ("predict-label-alone", _predict(_pets_run, "pets-new.csv", "--label"), ["--label"]),
    (
        "predict-keep-twice",
        _predict(_pets_run, "pets-new.csv", "--keep", "colour", "--keep", "colour"),
        ["'colour' is given twice"],
    ),
    ("predict-keep-unknown", _predict(_pets_run, "pets-new.csv", "--keep", "idd"), ["'idd'"]),
    (
        "predict-wrong-table",
        lambda r: ["predict", str(_iris_run(r)), "--data", str(r / "pets-new.csv"), "--proba"],
        ["'sepal_length_cm' not found"],
    ),
    (
        "class-weight-with-mse",
        _train("{source: diabetes}", "loss: {name: mse, class_weight: balanced}\n"),
        ["class_weight goes with"],
    ),
]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.glob("runs-*/**/*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("case", "build", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_data(workspace, runner, monkeypatch, case, build, expected):
    from mlpcli.cli import app

    root = workspace
    monkeypatch.chdir(root)
    before = _snapshot(root)
    args = build(root)
    if args[0] == "train":
        args += ["--runs-dir", str(root / "runs-new"), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (case, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert "Traceback" not in result.output
    assert _snapshot(root) == before
    assert not (root / "runs-new").exists()  # nothing written before the data was checked


def test_the_table_is_large_enough():
    assert len(CASES) >= 80
    assert len({c[0] for c in CASES}) == len(CASES)
