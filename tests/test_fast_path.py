"""The fast path (numba kernels, engine.fast) gives the numbers of the NumPy reference.

Every optimizer (with and without weight decay) and every activation, in float32 and
float64, runs on both paths from the same start; they must agree to rounding. The fast
path must also be deterministic: a seed gives bit-identical weights, and a run stopped and
resumed ends bit-identical to one never interrupted. Skipped when numba is not installed.
"""

import csv
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlpcli.config import load_config
from mlpcli.engine import ACTIVATIONS, LOSSES, MLP, fast, optimizers
from mlpcli.runs import resume_run, train_run
from mlpcli.train import Callback
from tests.helpers import write_config
from tests.test_engine_equivalence import DTYPES, OPTS, close

pytestmark = pytest.mark.skipif(not fast.available(), reason="numba not installed")


@pytest.fixture
def on_fast_path(monkeypatch):
    """Small test arrays take the fast path too; returns a switch between the two paths."""
    monkeypatch.setattr(fast, "MIN_SIZE", 0)

    def use(enabled: bool) -> None:
        monkeypatch.setattr(fast, "ENABLED", enabled)

    return use


def _model(activations, dtype, dropout=0.0, sizes=(7, 9, 8, 4)):
    model = MLP([*sizes[: len(activations) + 1], sizes[-1]], activations, dropout, dtype)
    model.init(np.random.default_rng(4), "glorot")
    for p in model.params:  # non-zero biases, so that bias paths are exercised
        p.value[...] += np.random.default_rng(5).normal(0, 0.1, p.value.shape)
    return model


def test_large_models_take_the_fast_path_and_small_ones_numpy():
    assert fast.path(fast.MIN_SIZE) == "numba"
    assert fast.path(fast.MIN_SIZE - 1) == "numpy"


def test_the_models_size_picks_the_path_for_every_parameter_biases_included(monkeypatch):
    """A bias of a large model is updated by the kernel too: the path is the model's."""
    from mlpcli.engine import kernels

    calls: list[int] = []
    real = kernels.adam
    monkeypatch.setattr(kernels, "adam", lambda p, *rest: calls.append(p.size) or real(p, *rest))
    model = _model(["relu"], np.float32, sizes=(400, 200, 3))  # 80,803 parameters
    assert sum(p.value.size for p in model.params) >= fast.MIN_SIZE
    for p in model.params:
        p.grad[...] = 0.5
    optimizers.Adam(lr=1e-3).step(model.params)
    assert sorted(calls) == sorted(p.value.size for p in model.params)  # 200 and 3 included


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("halves", [False, True])
def test_optimizers_match_the_numpy_path(
    on_fast_path, monkeypatch, dtype, name, weight_decay, halves
):
    if halves:  # updated in two halves, on two threads where there are two cores
        monkeypatch.setattr(optimizers, "PARALLEL_MIN", 2)
    cls, hp = OPTS[name]
    hp = {**hp, "weight_decay": weight_decay}
    rng = np.random.default_rng(8)
    grads = [rng.normal(size=_model(["relu"], dtype).flat.value.shape) for _ in range(5)]
    finals = []
    for enabled in (False, True):
        on_fast_path(enabled)
        model, opt = _model(["relu"], dtype), cls(**hp)
        for g in grads:
            model.flat.grad[...] = g
            opt.step([model.flat])
        finals.append((model.flat.value.copy(), opt.state_dict()))
    (want, want_state), (got, got_state) = finals
    assert got.dtype == dtype
    assert close(got, want, dtype)
    assert got_state.keys() == want_state.keys()
    for key in want_state:
        assert close(got_state[key], want_state[key], dtype), key


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_forward_backward_match_the_numpy_path(on_fast_path, dtype, activation, dropout):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 4, 64)
    xs = [rng.normal(size=(n, 7)) for n in (16, 64, 5, 16)]  # buffers grow, then shrink
    results = []
    for enabled in (False, True):
        on_fast_path(enabled)
        model = _model([activation, "relu"], dtype, dropout)
        out = []
        for x in xs:
            train = np.random.default_rng(len(x)) if dropout else None
            logits = model.forward(x, train).copy()
            _, dlogits = LOSSES["cross_entropy"].fn(logits, y[: len(x)])
            model.backward(dlogits)
            out.append((logits, model.flat.grad.copy(), model.logits(x)))
        results.append(out)
    for (want_z, want_g, want_eval), (z, g, evaluated) in zip(*results, strict=True):
        assert close(z, want_z, dtype)
        assert close(g, want_g, dtype)
        assert close(evaluated, want_eval, dtype)
        assert g.dtype == z.dtype == dtype


def test_relu_keeps_a_nan_so_that_divergence_is_seen(on_fast_path):
    model = _model(["relu", "relu"], np.float32)
    model.layers[0].weight.value[0, 0] = np.nan
    assert np.isnan(model.forward(np.ones((3, 7)))).any()


def _trainer(dtype: str = "float32", epochs: int = 3):
    from mlpcli.config import RunConfig
    from mlpcli.data import Dataset, Part
    from mlpcli.train import Trainer

    rng = np.random.default_rng(10)
    X = rng.normal(size=(90, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    cfg = RunConfig.model_validate(
        {
            "data": {"source": "x.csv", "split": {"train": 1.0, "val": 0.0, "test": 0.0}},
            "model": {"hidden": [{"units": 16}, {"units": 8}], "dropout": 0.2},
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": epochs, "batch_size": 12, "dtype": dtype},
            "seed": 3,
        }
    )
    names = [f"f{i}" for i in range(5)]
    data = Dataset("classification", names, "y", ["a", "b", "c"], {"train": Part(X, y)})
    return Trainer(cfg, data)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_matches_the_numpy_path_and_repeats_bit_identically(on_fast_path, dtype):
    check_paths_agree_and_repeat(on_fast_path, dtype)


def check_paths_agree_and_repeat(use: Callable[[bool], None], dtype: str) -> None:
    """Training with `use(False)` (the reference) and twice with `use(True)`: the two runs on
    the second path are bit-identical, and agree with the reference to rounding."""
    weights = []
    for enabled in (False, True, True):
        use(enabled)
        trainer = _trainer(dtype)
        trainer.run()
        weights.append(trainer.model.flat.value.copy())
    reference, a, b = weights
    assert np.array_equal(a, b)
    # three epochs of Adam: a relative 1e-4 of rounding differences may build up
    assert np.allclose(a, reference, rtol=0, atol=1e-4 * np.abs(reference).max())


class StopAt(Callback):
    """Sets the stop flag after batch `batch` of epoch `epoch`."""

    def __init__(self, stop: threading.Event, epoch: int, batch: int) -> None:
        self.stop, self.epoch, self.batch = stop, epoch, batch

    def on_batch_end(self, trainer, batch: int, n_batches: int) -> None:
        if (trainer.epoch, batch) == (self.epoch, self.batch):
            self.stop.set()


def _outcome(run: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    rows = list(csv.DictReader((run / "metrics.csv").open(newline="")))
    for row in rows:
        row.pop("seconds")  # wall time
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as z:
        return rows, {k: z[k] for k in z.files if k != "meta"}


def test_resumed_run_is_bit_identical_on_the_fast_path(on_fast_path, tmp_path):
    on_fast_path(True)
    check_resumed_run_is_bit_identical(tmp_path)


def check_resumed_run_is_bit_identical(tmp_path: Path) -> None:
    """A run stopped in epoch 3 and resumed ends as the same run never stopped, bit for bit."""
    text = """
data: {source: iris}
model: {hidden: [{units: 16, activation: relu}, {units: 8, activation: relu}], dropout: 0.1}
optimizer: {name: adam, lr: 0.05}
training: {epochs: 6, batch_size: 16, early_stopping: null, checkpoint_every: 2}
"""
    cfg = load_config(write_config(tmp_path, text, "resume.yaml"))
    whole, _ = train_run(cfg, tmp_path / "whole", [])
    stop = threading.Event()
    run, result = train_run(cfg, tmp_path / "parts", [StopAt(stop, 3, 4)], stop=stop)
    assert result.status == "interrupted"
    resume_run(run, [])
    (rows, arrays), (want_rows, want_arrays) = _outcome(run), _outcome(whole)
    assert rows == want_rows and len(rows) == 6
    assert arrays.keys() == want_arrays.keys()
    for key, value in want_arrays.items():
        assert np.array_equal(arrays[key], value), key


def test_a_run_resumed_on_another_engine_says_so_in_its_summary(on_fast_path, tmp_path):
    import json

    on_fast_path(True)
    cfg = load_config(
        write_config(tmp_path, "data: {source: iris}\ntraining: {epochs: 4}\n", "engine.yaml")
    )
    stop = threading.Event()
    run, result = train_run(cfg, tmp_path / "runs", [StopAt(stop, 2, 2)], stop=stop)
    assert result.status == "interrupted"
    started = json.loads((run / "summary.json").read_text())["engine"]
    assert started["kernels"] == "numba"
    on_fast_path(False)
    resume_run(run, [])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["engine"]["kernels"] == "numpy"
    assert summary["engine_before_resume"] == started


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("into_z", [False, True])
def test_softmax_cross_entropy_kernel_matches_the_reference_loss_and_count(dtype, into_z):
    """One pass gives cross_entropy's loss and gradient, and the arg-max count the trainer
    reports as accuracy (ties to the first class, as np.argmax), even when `out` is z."""
    from mlpcli.engine import kernels
    from mlpcli.engine.losses import cross_entropy
    from mlpcli.engine.metrics import predicted_classes

    rng = np.random.default_rng(12)
    z = (rng.normal(size=(37, 6)) * 30).astype(dtype)  # large logits: the max shift matters
    z[3] = 2.0  # a tie across the whole row
    z[4, :2] = z[4].max() + 1  # a tie at the top
    y = rng.integers(0, 6, 37)
    y[3], y[4] = 0, 1
    want_loss, want_grad = cross_entropy(z.copy(), y)
    want_correct = int(np.count_nonzero(predicted_classes(z) == y))
    out = z if into_z else np.empty_like(z)
    total, correct = kernels.softmax_cross_entropy(z, y, out)
    assert correct == want_correct
    assert np.isclose(total / len(y), want_loss, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert out.dtype == dtype
    assert close(out, want_grad, dtype)


def test_softmax_cross_entropy_kernel_lets_a_nan_through_so_that_divergence_is_seen():
    from mlpcli.engine import kernels

    for col in (0, 2):
        z = np.ones((3, 4), np.float32)
        z[1, col] = np.nan
        total, _ = kernels.softmax_cross_entropy(z, np.array([0, 1, 2]), z)
        assert np.isnan(total)


def test_only_the_plain_losses_have_a_one_pass_kernel():
    """Label smoothing and class weights keep the NumPy loss, on either path."""
    from mlpcli.build import loss_kernel
    from mlpcli.config import RunConfig

    def cfg(loss: dict) -> RunConfig:
        return RunConfig.model_validate({"data": {"source": "iris"}, "loss": loss})

    assert loss_kernel(cfg({"name": "cross_entropy"})) == "softmax_cross_entropy"
    assert loss_kernel(cfg({"name": "cross_entropy", "label_smoothing": 0.1})) is None
    assert loss_kernel(cfg({"name": "cross_entropy", "class_weight": "balanced"})) is None
    assert loss_kernel(cfg({"name": "mse"})) is None


def test_a_small_model_takes_the_fast_path_in_a_run_planned_long_enough(monkeypatch):
    """The planned steps (restarts x epochs x batches), not how far a run got, decide."""
    from mlpcli.runs import engine_in_use

    trainer = _trainer(epochs=5)  # 90 rows in batches of 12: 8 a epoch, 40 planned
    assert trainer.model.n_params < fast.MIN_SIZE
    assert trainer.model.steps == 40
    assert engine_in_use(trainer)["kernels"] == "numpy"
    monkeypatch.setattr(fast, "MIN_STEPS", 40)
    assert engine_in_use(trainer)["kernels"] == "numba"
    assert trainer.model.kernels() is not None
    monkeypatch.setattr(fast, "MIN_STEPS", 41)
    assert trainer.model.kernels() is None


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"hidden": [{"units": 16, "activation": "tanh"}]}},
        {"loss": {"name": "cross_entropy", "label_smoothing": 0.1}},
    ],
)
def test_a_long_run_whose_step_the_kernels_do_not_cover_stays_on_numpy(change):
    """tanh and a smoothed loss have no kernel: only the update would be fused, too little
    to pay numba's import, however long the run."""
    from mlpcli.build import fused_steps
    from mlpcli.config import RunConfig

    base = {"data": {"source": "iris"}, "training": {"epochs": 10**6}}
    assert fused_steps(RunConfig.model_validate(base), 100) >= fast.MIN_STEPS
    assert fused_steps(RunConfig.model_validate({**base, **change}), 100) == 0


def test_a_long_planned_run_of_a_small_model_matches_the_numpy_path(monkeypatch):
    """The path a long run takes, with its fused loss, activation and update: the same
    weights as the reference to rounding, and bit-identical from one run to the next."""
    monkeypatch.setattr(fast, "MIN_STEPS", 1)
    check_paths_agree_and_repeat(lambda on: monkeypatch.setattr(fast, "ENABLED", on), "float32")
