"""Finite-difference checks of every maths piece: activations, losses, layers, networks."""

import numpy as np
import pytest

from mlpcli.engine import ACTIVATIONS, DERIVATIVES, LOSSES, MLP
from mlpcli.engine.gradcheck import check_model, numeric_grad, relative_error

TOL = 1e-6


def _inputs(rng: np.random.Generator, shape=(5, 4)) -> np.ndarray:
    # keep away from relu/leaky/elu kinks at 0, where the derivative is one-sided
    z = rng.normal(0, 1.5, shape)
    return np.where(np.abs(z) < 1e-2, 0.5, z)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivative(name):
    rng = np.random.default_rng(0)
    z = _inputs(rng)
    upstream = rng.normal(size=z.shape)
    a = ACTIVATIONS[name](z)
    analytic = DERIVATIVES[name](z, a, upstream)

    def f() -> float:
        return float((ACTIVATIONS[name](z) * upstream).sum())

    assert relative_error(analytic, numeric_grad(f, z)) < TOL


def _targets(name: str, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    if name == "cross_entropy":
        return rng.integers(0, k, n)
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, n)
    return rng.normal(size=(n, k))


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_gradient(name):
    rng = np.random.default_rng(1)
    k = 1 if name == "binary_cross_entropy" else 3
    z = _inputs(rng, (6, k))
    y = _targets(name, rng, 6, k)
    fn = LOSSES[name].fn
    _, analytic = fn(z, y)
    assert relative_error(analytic, numeric_grad(lambda: fn(z, y)[0], z)) < TOL


def test_label_smoothing_gradient():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    fn = LOSSES["cross_entropy"].fn
    _, analytic = fn(z, y, label_smoothing=0.1)
    numeric = numeric_grad(lambda: fn(z, y, label_smoothing=0.1)[0], z)
    assert relative_error(analytic, numeric) < TOL


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_are_finite_for_extreme_logits(name):
    k = 1 if name == "binary_cross_entropy" else 3
    z = np.array([[1000.0, -1000.0, 0.0][:k], [-1000.0, 1000.0, 0.0][:k]])
    y = _targets(name, np.random.default_rng(0), 2, k)
    loss, grad = LOSSES[name].fn(z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


def test_cross_entropy_is_negative_log_likelihood_of_softmax():
    z = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 3.0]])
    y = np.array([0, 2])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.log(p[[0, 1], y]).mean()
    assert LOSSES["cross_entropy"].fn(z, y)[0] == pytest.approx(expected, rel=1e-12)


def _model(activations, dropout=0.0, out=3):
    model = MLP([*[4, 5, 6][: len(activations) + 1], out], activations, dropout, np.float64)
    model.init(np.random.default_rng(3), "glorot")
    rng = np.random.default_rng(4)
    for p in model.params:  # non-zero biases so their gradients are exercised too
        p.value[...] += rng.normal(0, 0.1, p.value.shape)
    return model


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_two_hidden_layer_network(activation):
    rng = np.random.default_rng(5)
    model = _model([activation, "tanh"])
    x, y = rng.normal(size=(7, 4)), rng.integers(0, 3, 7)
    errors = check_model(model, LOSSES["cross_entropy"].fn, x, y)
    assert set(errors) == {p.name for p in model.params}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("loss", ["mse", "huber", "binary_cross_entropy"])
def test_network_with_other_losses(loss):
    rng = np.random.default_rng(6)
    model = _model(["relu", "sigmoid"], out=1 if loss == "binary_cross_entropy" else 2)
    x = rng.normal(size=(7, 4))
    y = rng.integers(0, 2, 7) if loss == "binary_cross_entropy" else rng.normal(size=(7, 2))
    assert max(check_model(model, LOSSES[loss].fn, x, y).values()) < TOL


def test_dropout_gradient_with_a_fixed_mask():
    """The same seed gives the same mask, so f(w) is a fixed function of the weights."""
    rng = np.random.default_rng(7)
    model = _model(["relu", "tanh"], dropout=0.5)
    x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    loss = LOSSES["cross_entropy"].fn

    def f() -> float:
        return loss(model.forward(x, np.random.default_rng(99)), y)[0]

    model.backward(loss(model.forward(x, np.random.default_rng(99)), y)[1])
    for p in model.params:
        analytic = p.grad.copy()
        assert relative_error(analytic, numeric_grad(f, p.value)) < TOL, p.name


def test_dropout_is_off_at_evaluation_and_scales_kept_units():
    model = _model(["identity", "identity"], dropout=0.5)
    x = np.ones((2000, 4))
    assert np.array_equal(model.logits(x), model.forward(x))
    train_out = model.forward(x, np.random.default_rng(0))
    # inverted dropout keeps the expected activation: the mean output stays close
    assert np.allclose(train_out.mean(axis=0), model.logits(x).mean(axis=0), atol=0.1)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_class_weighted_cross_entropy_gradient(smoothing):
    rng = np.random.default_rng(5)
    z, y = rng.normal(size=(7, 3)), rng.integers(0, 3, 7)
    weights = np.array([0.5, 2.0, 3.5])
    fn = LOSSES["cross_entropy"].fn

    def loss() -> float:
        return fn(z, y, label_smoothing=smoothing, class_weight=weights)[0]

    value, analytic = fn(z, y, label_smoothing=smoothing, class_weight=weights)
    assert relative_error(analytic, numeric_grad(loss, z)) < TOL
    # each example's loss times its class's weight, a plain mean over the batch
    per_row = [fn(z[i : i + 1], y[i : i + 1], label_smoothing=smoothing)[0] for i in range(7)]
    assert value == pytest.approx(float(np.mean(weights[y] * per_row)))
    unweighted = fn(z, y, label_smoothing=smoothing)
    ones = fn(z, y, label_smoothing=smoothing, class_weight=np.ones(3))
    assert ones[0] == pytest.approx(unweighted[0]) and np.allclose(ones[1], unweighted[1])


def test_class_weighted_binary_cross_entropy_gradient():
    rng = np.random.default_rng(6)
    z, y = rng.normal(size=(8, 1)), rng.integers(0, 2, 8)
    weights = np.array([0.25, 4.0])
    fn = LOSSES["binary_cross_entropy"].fn
    value, analytic = fn(z, y, class_weight=weights)
    assert (
        relative_error(analytic, numeric_grad(lambda: fn(z, y, class_weight=weights)[0], z)) < TOL
    )
    per_row = [fn(z[i : i + 1], y[i : i + 1])[0] for i in range(8)]
    assert value == pytest.approx(float(np.mean(weights[y] * per_row)))
