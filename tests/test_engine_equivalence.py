"""The optimised engine gives the numbers of a straightforward implementation.

The engine reuses buffers, updates in place and in chunks, and takes shortcuts (row maxima
read at the argmax, column sums as matrix-vector products, bias correction folded into
the step size). Each reference below is the textbook form, allocating freely; the two must
agree within float tolerance, in float32 and float64.
"""

import sys
import tracemalloc

import numpy as np
import pytest

from mlpcli.engine import ACTIVATIONS, DERIVATIVES, LOSSES, MLP, optimizers
from mlpcli.engine.activations import IN_PLACE
from mlpcli.engine.optimizers import SGD, Adam, AdamW, Momentum, RMSprop

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def close(actual, expected, dtype) -> bool:
    scale = max(float(np.abs(expected).max(initial=0)), 1e-30)
    return float(np.abs(np.asarray(actual) - expected).max(initial=0)) <= RTOL[dtype] * scale


# ----------------------------------------------------------------------------- references


def ref_cross_entropy(z, y, eps=0.0):
    n, k = z.shape
    shifted = z - z.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    target = np.full_like(z, eps / k)
    target[np.arange(n), y] += 1.0 - eps
    return -(target * logp).sum() / n, (np.exp(logp) - target) / n


def ref_regression(name, z, y, delta=1.0):
    d = z - y
    if name == "mse":
        return (d * d).mean(), 2 * d / d.size
    if name == "mae":
        return np.abs(d).mean(), np.sign(d) / d.size
    quad = np.abs(d) <= delta
    loss = np.where(quad, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta)).mean()
    return loss, np.where(quad, d, delta * np.sign(d)) / d.size


def ref_forward_backward(model, x, dlogits_fn, rng=None):
    """Textbook backprop over the model's weights; returns logits and per-param grads."""
    hs, zs, masks = [x.astype(model.dtype)], [], []
    for layer, name in zip(model.layers[:-1], model.activations, strict=True):
        z = hs[-1] @ layer.weight.value + layer.bias.value
        a = ACTIVATIONS[name](z)
        mask = None
        if rng is not None and model.dropout > 0:
            keep = 1.0 - model.dropout
            mask = (rng.random(a.shape) < keep).astype(model.dtype) / model.dtype.type(keep)
            a = a * mask
        zs.append(z)
        masks.append(mask)
        hs.append(a)
    last = model.layers[-1]
    logits = hs[-1] @ last.weight.value + last.bias.value
    grad = dlogits_fn(logits)
    grads = {}
    for i in reversed(range(len(model.layers))):
        layer = model.layers[i]
        grads[layer.weight.name] = hs[i].T @ grad
        grads[layer.bias.name] = grad.sum(axis=0)
        if i == 0:
            break
        grad = grad @ layer.weight.value.T
        if masks[i - 1] is not None:
            grad = grad * masks[i - 1]
        z = zs[i - 1]
        a = ACTIVATIONS[model.activations[i - 1]](z)
        grad = DERIVATIVES[model.activations[i - 1]](z, a, grad)
    return logits, grads


def ref_optimizer(name, hp, p, grads):
    """Run the torch.optim definition for len(grads) steps; returns the final p."""
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    lr, wd = hp["lr"], hp.get("weight_decay", 0.0)
    for t, g in enumerate(grads, start=1):
        if name == "adamw":
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        if name == "sgd":
            p = p - lr * g
        elif name in ("momentum", "nesterov"):
            m = g if t == 1 else hp["momentum"] * m + g
            step = g + hp["momentum"] * m if name == "nesterov" else m
            p = p - lr * step
        elif name in ("adam", "adamw"):
            b1, b2, eps = 0.9, 0.999, 1e-8
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        else:  # rmsprop
            v = 0.99 * v + 0.01 * g * g
            p = p - lr * g / (np.sqrt(v) + 1e-8)
    return p


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("out", ["none", "buffer", "z"])
def test_cross_entropy_matches_reference(dtype, eps, out):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (37, 10)).astype(dtype)
    y = rng.integers(0, 10, 37)
    want_loss, want_grad = ref_cross_entropy(z, y, eps)
    target = {"none": None, "buffer": np.empty_like(z), "z": z.copy()}[out]
    zin = target if out == "z" else z
    loss, grad = LOSSES["cross_entropy"].fn(zin, y, label_smoothing=eps, out=target)
    assert loss == pytest.approx(float(want_loss), rel=RTOL[dtype] * 10)
    assert close(grad, want_grad, dtype)
    assert grad.dtype == dtype
    if target is not None:
        assert grad is target


def test_cross_entropy_extreme_logits_stay_finite_and_right():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]], np.float32)
    y = np.array([0, 0])
    loss, grad = LOSSES["cross_entropy"].fn(z, y)
    assert loss == pytest.approx(1000.0)  # row 0 is right; row 1 pays 2000
    assert np.allclose(grad, [[0, 0, 0], [-0.5, 0.5, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_losses_with_out_match_reference(dtype, name):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(9, 2)).astype(dtype)
    y = rng.normal(size=(9, 2)).astype(dtype)
    want_loss, want_grad = ref_regression(name, z, y)
    loss, grad = LOSSES[name].fn(z.copy(), y)
    buf = z.copy()
    loss_out, grad_out = LOSSES[name].fn(buf, y, out=buf)
    for got_loss, got in ((loss, grad), (loss_out, grad_out)):
        assert got_loss == pytest.approx(float(want_loss), rel=RTOL[dtype] * 10)
        assert close(got, want_grad, dtype)
    assert grad_out is buf


def test_binary_cross_entropy_with_out():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(8, 1)), rng.integers(0, 2, 8)
    loss, grad = LOSSES["binary_cross_entropy"].fn(z, y)
    out = np.empty_like(z)
    loss2, grad2 = LOSSES["binary_cross_entropy"].fn(z, y, out=out)
    assert loss == loss2 and grad2 is out and np.array_equal(grad, grad2)


# ----------------------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(IN_PLACE))
def test_in_place_activations_match_the_plain_ones(dtype, name):
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, (6, 5)).astype(dtype)
    g = rng.normal(size=z.shape).astype(dtype)
    a = ACTIVATIONS[name](z)
    want = DERIVATIVES[name](z, a, g)
    work = z.copy()
    got_a = IN_PLACE[name].forward(work, np.zeros_like(z))
    assert np.shares_memory(got_a, work) and close(got_a, a, dtype)
    g_work = g.copy()
    got = IN_PLACE[name].backward(got_a, g_work, np.empty_like(z))
    assert np.shares_memory(got, g_work) and close(got, want, dtype)


# ----------------------------------------------------------------------------- the network


def _model(activations, dtype, dropout=0.0, sizes=(7, 9, 8, 4)):
    model = MLP([*sizes[: len(activations) + 1], sizes[-1]], activations, dropout, dtype)
    model.init(np.random.default_rng(4), "glorot")
    for p in model.params:  # non-zero biases, so that bias paths are exercised
        p.value[...] += np.random.default_rng(5).normal(0, 0.1, p.value.shape)
    return model


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_forward_backward_match_reference(dtype, activation, dropout):
    model = _model([activation, "relu"], dtype, dropout)
    rng = np.random.default_rng(6)
    y = rng.integers(0, 4, 64)
    loss = LOSSES["cross_entropy"].fn
    # several batch sizes in turn: buffers grow, then smaller batches use their first rows
    for n in (16, 64, 5, 16):
        x = rng.normal(size=(n, 7))
        train = np.random.default_rng(n) if dropout else None
        logits = model.forward(x, train)
        _, dlogits = loss(logits, y[:n])
        model.backward(dlogits)
        ref_train = np.random.default_rng(n) if dropout else None
        want_logits, want = ref_forward_backward(
            model, x, lambda z, n=n: loss(z, y[:n])[1], ref_train
        )
        for p in model.params:
            assert close(p.grad, want[p.name], dtype), (n, p.name)
        assert close(logits, want_logits, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_equal_eval_forward_and_leave_training_state(dtype):
    model = _model(["relu", "tanh"], dtype)
    rng = np.random.default_rng(7)
    x, xe = rng.normal(size=(12, 7)), rng.normal(size=(50, 7))
    y = rng.integers(0, 4, 12)
    _, dlogits = LOSSES["cross_entropy"].fn(model.forward(x), y)
    evaluated = model.logits(xe, chunk=16)  # between a forward and its backward
    model.backward(dlogits)
    _, want = ref_forward_backward(model, x, lambda z: LOSSES["cross_entropy"].fn(z, y)[1])
    assert all(close(p.grad, want[p.name], dtype) for p in model.params)
    # row blocks of different heights may take different GEMM kernels: equal up to rounding
    assert close(evaluated, model.forward(xe), dtype)
    assert np.array_equal(model.logits(xe), model.forward(xe))  # one chunk: the same arithmetic
    assert evaluated.dtype == dtype


def test_forward_reuses_its_output_array():
    model = _model(["relu", "relu"], np.float32)
    x = np.ones((3, 7))
    first = model.forward(x)
    assert np.shares_memory(first, model.forward(2 * x))


# ----------------------------------------------------------------------------- optimizers


OPTS = {
    "sgd": (SGD, {"lr": 0.1}),
    "momentum": (Momentum, {"lr": 0.1, "momentum": 0.9}),
    "nesterov": (Momentum, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {"lr": 0.01}),
    "adamw": (AdamW, {"lr": 0.01}),
    "rmsprop": (RMSprop, {"lr": 0.01}),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_optimizers_match_the_torch_definitions(monkeypatch, dtype, name, weight_decay):
    monkeypatch.setattr(optimizers, "CHUNK", 7)  # several chunks and a short last one
    cls, hp = OPTS[name]
    hp = {**hp, "weight_decay": weight_decay}
    rng = np.random.default_rng(8)
    model = _model(["relu"], dtype)
    start = model.flat.value.copy()
    grads = [rng.normal(size=start.shape).astype(dtype) for _ in range(5)]
    opt = cls(**hp)
    for g in grads:
        model.flat.grad[...] = g
        opt.step([model.flat])
    want = ref_optimizer(name, hp, start.astype(np.float64), grads)
    assert close(model.flat.value, want, dtype)
    assert model.flat.value.dtype == dtype


def test_optimizer_on_per_layer_params_equals_the_flat_buffer():
    rng = np.random.default_rng(9)
    a, b = _model(["relu"], np.float64), _model(["relu"], np.float64)
    opt_a, opt_b = Adam(0.01), Adam(0.01)
    for _ in range(3):
        g = rng.normal(size=a.flat.grad.shape)
        a.flat.grad[...] = g
        b.flat.grad[...] = g
        opt_a.step([a.flat])
        opt_b.step(b.params)
    assert np.allclose(a.flat.value, b.flat.value, rtol=1e-12, atol=0)


def test_optimizer_refuses_a_non_contiguous_parameter():
    from mlpcli.engine import Param

    value = np.zeros((4, 4))[:, ::2]
    with pytest.raises(ValueError, match="contiguous"):
        SGD(0.1).step([Param("p", value, np.ones_like(value))])


# ----------------------------------------------------------------------------- steady state


def test_a_training_step_allocates_no_batch_sized_arrays():
    """After a warm-up step, forward + loss + backward + Adam allocate (almost) nothing."""
    model = MLP([64, 256, 256, 10], ["relu", "relu"], 0.0, np.float32)
    model.init(np.random.default_rng(0), "he")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(128, 64)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    opt = Adam(1e-3)

    def step() -> None:
        logits = model.forward(x, rng)
        _, dlogits = LOSSES["cross_entropy"].fn(logits, y, out=logits)
        model.backward(dlogits)
        opt.step([model.flat])

    step()
    tracemalloc.start()
    try:
        for _ in range(3):
            step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One (128, 256) float32 activation is 128 KiB. What remains are per-row vectors (1 KiB)
    # and NumPy's fixed-size ufunc buffers for broadcasting and casting (32 KiB).
    assert peak < 64 * 1024, peak


# ----------------------------------------------------------------------------- the trainer


def _trainer(dtype: str, dropout: float = 0.0, batch_size: int = 16):
    from mlpcli.config import RunConfig
    from mlpcli.data import Dataset, Part
    from mlpcli.train import Trainer

    rng = np.random.default_rng(10)
    X = rng.normal(size=(70, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    cfg = RunConfig.model_validate(
        {
            "data": {"source": "x.csv", "split": {"train": 1.0, "val": 0.0, "test": 0.0}},
            "model": {"hidden": [{"units": 8}, {"units": 6, "activation": "tanh"}]},
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"batch_size": batch_size, "dtype": dtype, "early_stopping": None},
        }
    )
    cfg.model.dropout = dropout
    names = [f"f{i}" for i in range(5)]
    data = Dataset("classification", names, "y", ["a", "b", "c"], {"train": Part(X, y)})
    return Trainer(cfg, data)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dropout", [0.0, 0.25])
@pytest.mark.parametrize("batching", ["shuffled-copy", "gathered", "unshuffled"])
def test_trainer_epoch_matches_a_textbook_loop(monkeypatch, dtype, dropout, batching):
    """One epoch of Trainer (batches sliced from a shuffled copy of small data, gathered row
    by row from large data, or sliced in file order; in-place step) against a plain loop."""
    if batching == "gathered":
        monkeypatch.setattr(sys.modules["mlpcli.train"], "SHUFFLE_WHOLE_BYTES", 0)
    trainer = _trainer(dtype, dropout)
    trainer.cfg.training.shuffle = batching != "unshuffled"
    trainer._fresh_start()
    model = trainer.model
    start = model.flat.value.copy()
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = trainer.rng.bit_generator.state
    record = trainer._run_epoch(1, 1)
    assert record is not None

    X, y = trainer.X["train"], trainer.y["train"]
    order = rng.permutation(len(X)) if batching != "unshuffled" else np.arange(len(X))
    ref = MLP(model.sizes, model.activations, dropout, model.dtype.type)
    ref.flat.value[...] = start
    steps, total_loss, correct = [], 0.0, 0
    loss = LOSSES["cross_entropy"].fn
    for b in range(0, len(X), 16):
        idx = order[b : b + 16]
        logits, grads = ref_forward_backward(ref, X[idx], lambda z, i=idx: loss(z, y[i])[1], rng)
        total_loss += float(loss(logits, y[idx])[0]) * len(idx)
        correct += int((logits.argmax(axis=1) == y[idx]).sum())
        steps.append(np.concatenate([grads[p.name].ravel() for p in ref.params]))
        ref.flat.value[...] = _adam_from(start, steps, model.dtype.type)
    dt = model.dtype.type
    assert close(model.flat.value, ref.flat.value, dt)
    assert record.metrics["train_loss"] == pytest.approx(total_loss / len(X), rel=1e-5)
    assert record.metrics["train_accuracy"] == correct / len(X)


def _adam_from(start, grads, dtype):
    """Adam over the whole sequence of gradients so far (its state is the history)."""
    return ref_optimizer("adam", {"lr": 0.01}, start.astype(np.float64), grads).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_weights(dtype):
    a, b = _trainer(dtype, dropout=0.2, batch_size=12), _trainer(dtype, dropout=0.2, batch_size=12)
    a.cfg.training.epochs = b.cfg.training.epochs = 3
    a.run()
    b.run()
    assert np.array_equal(a.model.flat.value, b.model.flat.value)


def test_small_and_large_data_batching_give_bit_identical_runs(monkeypatch):
    copied = _trainer("float32", dropout=0.2, batch_size=12)
    copied.cfg.training.epochs = 3
    copied.run()
    monkeypatch.setattr(sys.modules["mlpcli.train"], "SHUFFLE_WHOLE_BYTES", 0)
    gathered = _trainer("float32", dropout=0.2, batch_size=12)
    gathered.cfg.training.epochs = 3
    gathered.run()
    assert np.array_equal(copied.model.flat.value, gathered.model.flat.value)


def test_large_data_gathers_the_next_batch_while_the_optimizer_updates(monkeypatch):
    from mlpcli.engine import blas

    train = sys.modules["mlpcli.train"]
    monkeypatch.setattr(train, "SHUFFLE_WHOLE_BYTES", 0)
    together = []
    real = blas.parallel
    monkeypatch.setattr(
        train.blas, "parallel", lambda blocks: together.append(len(blocks)) or real(blocks)
    )
    trainer = _trainer("float32", batch_size=12)  # 70 rows: 6 batches an epoch
    trainer.cfg.training.epochs = 2
    trainer.run()
    assert together == [2] * 10  # every batch but an epoch's last has a next one to gather


def test_batch_gather_equals_fancy_indexing():
    trainer = _trainer("float32")
    X, y = trainer.X["train"], trainer.y["train"]
    for idx in (np.array([3, 1, 4, 1, 5]), np.arange(9)[::-1], np.array([0, 69])):
        xb, yb = trainer._gather(X, y, idx)
        assert np.array_equal(xb, X[idx]) and np.array_equal(yb, y[idx])


# ----------------------------------------------------------------------------- BLAS threads


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_products_equal_numpy_and_do_not_depend_on_who_computes(monkeypatch, dtype):
    from mlpcli.engine import blas

    monkeypatch.setattr(blas, "PARALLEL_MIN_MACS", 1)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(70, 33)).astype(dtype)
    w = rng.normal(size=(33, 21)).astype(dtype)
    dz = rng.normal(size=(70, 21)).astype(dtype)
    for a, b in ((x, w), (x.T, dz), (dz, w.T)):
        want = a @ b
        runs = []
        for _ in range(5):  # helpers claim blocks at random moments: the result is the same
            out = np.empty_like(want)
            runs.append(blas.matmul(a, b, out).copy())
        assert close(runs[0], want, dtype)
        assert all(np.array_equal(r, runs[0]) for r in runs)
    blas.restore()


def test_split_products_run_blocks_in_fixed_row_ranges(monkeypatch):
    """Whatever thread computes a block, the blocks are the same: no timing in the numbers."""
    from mlpcli.engine import blas

    seen = []
    monkeypatch.setattr(blas, "PARALLEL_MIN_MACS", 1)
    monkeypatch.setattr(blas._state(), "cores", 3)
    monkeypatch.setattr(blas._Blas, "run", lambda self, p: seen.append(p.blocks) or p.work())
    a, b = np.ones((100, 4)), np.ones((4, 5))
    out = blas.matmul(a, b, np.empty((100, 5)))
    assert np.array_equal(out, a @ b)
    assert [len(blk.args[0]) for blk in seen[0]] == [33, 33, 34]  # (a rows, b, out=)


def test_training_keeps_the_blas_on_one_thread_and_gives_it_back_at_the_end():
    from mlpcli.engine import blas
    from mlpcli.train import Callback

    state = blas._state()
    if state.setter is None:
        pytest.skip("no controllable OpenBLAS here")
    seen = []

    class Watch(Callback):
        def on_batch_end(self, trainer, batch, n_batches):
            seen.append(state.current)

    trainer = _trainer("float32")
    trainer.callbacks.append(Watch())
    trainer.cfg.training.epochs = 2
    trainer.run()
    assert seen and set(seen) == {1}
    assert state.current == state.default


def test_a_forked_child_gets_its_own_helper_threads():
    import multiprocessing

    from mlpcli.engine import blas

    blas._state()  # the parent's state exists before the fork
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_child_uses_fresh_state) is True


def _child_uses_fresh_state() -> bool:
    from mlpcli.engine import blas

    return blas._blas is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_network_without_hidden_layers(dtype):
    model = MLP([5, 3], [], 0.0, dtype)
    model.init(np.random.default_rng(12), "glorot")
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(9, 5)), rng.integers(0, 3, 9)
    _, dlogits = LOSSES["cross_entropy"].fn(model.forward(x), y)
    model.backward(dlogits)
    _, want = ref_forward_backward(model, x, lambda z: LOSSES["cross_entropy"].fn(z, y)[1])
    assert all(close(p.grad, want[p.name], dtype) for p in model.params)
