"""Optional cross-check against PyTorch: the same network, data and optimizer, step by step.

Skipped when torch is not installed (it is never a dependency of mlpcli; install the
`bench` extra or `pip install torch==2.13.0` to run it).
"""

import numpy as np
import pytest

from mlpcli.engine import LOSSES, MLP
from mlpcli.engine.optimizers import SGD, Adam, AdamW, Momentum, RMSprop

torch = pytest.importorskip("torch")

SIZES = [5, 7, 6, 3]
WD = 0.01


def _ours(name):
    return {
        "sgd": lambda: SGD(0.1, WD),
        "momentum": lambda: Momentum(0.1, 0.9, False, WD),
        "nesterov": lambda: Momentum(0.1, 0.9, True, WD),
        "adam": lambda: Adam(0.01, weight_decay=WD),
        "adamw": lambda: AdamW(0.01, weight_decay=WD),
        "rmsprop": lambda: RMSprop(0.01, weight_decay=WD),
    }[name]()


def _theirs(name, params):
    optim = torch.optim
    return {
        "sgd": lambda: optim.SGD(params, lr=0.1, weight_decay=WD),
        "momentum": lambda: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=WD),
        "nesterov": lambda: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=WD),
        "adam": lambda: optim.Adam(params, lr=0.01, weight_decay=WD),
        "adamw": lambda: optim.AdamW(params, lr=0.01, weight_decay=WD),
        "rmsprop": lambda: optim.RMSprop(params, lr=0.01, weight_decay=WD),
    }[name]()


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu", "softplus"])
def test_five_training_steps_match_torch(name, activation):
    rng = np.random.default_rng(0)
    model = MLP(SIZES, [activation, activation], dtype=np.float64)
    model.init(rng, "glorot")
    torch_layers = []
    for p in model.params[::2]:
        torch_layers.append(torch.nn.Linear(*p.value.shape, dtype=torch.float64))
    acts = {
        "relu": torch.nn.ReLU,
        "tanh": torch.nn.Tanh,
        "sigmoid": torch.nn.Sigmoid,
        "elu": torch.nn.ELU,
        "softplus": torch.nn.Softplus,
    }
    net = torch.nn.Sequential(
        torch_layers[0], acts[activation](), torch_layers[1], acts[activation](), torch_layers[2]
    )
    with torch.no_grad():
        for layer, (w, b) in zip(
            torch_layers, zip(model.params[::2], model.params[1::2], strict=True), strict=True
        ):
            layer.weight.copy_(torch.from_numpy(w.value.T.copy()))
            layer.bias.copy_(torch.from_numpy(b.value.copy()))
    ours, theirs = _ours(name), _theirs(name, net.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(5):
        x = rng.normal(size=(8, SIZES[0]))
        y = rng.integers(0, SIZES[-1], 8)
        loss, dlogits = LOSSES["cross_entropy"].fn(model.forward(x), y)
        model.backward(dlogits)
        ours.step([model.flat])
        theirs.zero_grad()
        torch_loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y))
        torch_loss.backward()
        theirs.step()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-10), step
    for layer, w in zip(torch_layers, model.params[::2], strict=True):
        np.testing.assert_allclose(w.value, layer.weight.detach().numpy().T, rtol=1e-9, atol=1e-12)


def test_label_smoothing_matches_torch():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    loss, grad = LOSSES["cross_entropy"].fn(z, y, label_smoothing=0.2)
    zt = torch.from_numpy(z).requires_grad_()
    expected = torch.nn.CrossEntropyLoss(label_smoothing=0.2)(zt, torch.from_numpy(y))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", ["mse", "mae", "huber"])
def test_regression_losses_match_torch(name):
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    loss, grad = LOSSES[name].fn(z, y)
    zt = torch.from_numpy(z).requires_grad_()
    module = {"mse": torch.nn.MSELoss, "mae": torch.nn.L1Loss, "huber": torch.nn.HuberLoss}[name]
    expected = module()(zt, torch.from_numpy(y))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10)
