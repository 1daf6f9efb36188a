"""Each optimizer against a trajectory worked out by hand from torch.optim's definitions.

The problem: f(p) = sum(p**2) / 2 + c.p, so g = p + c. Three steps from p0, with weight decay,
each expected value written out independently of the engine's code.
"""

import math

import numpy as np
import pytest

from mlpcli.engine import OPTIMIZERS, Param
from mlpcli.engine.optimizers import SGD, Adam, AdamW, Momentum, RMSprop

P0 = [1.0, -2.0]
C = [0.5, 0.25]
WD = 0.1
LR = 0.1


def grad(p):
    return [pi + ci for pi, ci in zip(p, C, strict=True)]


def run(optimizer, steps=3):
    param = Param("w", np.array(P0), np.zeros(2))
    trajectory = []
    for _ in range(steps):
        param.grad[...] = grad(param.value.tolist())
        optimizer.step([param])
        trajectory.append(param.value.copy())
    return np.array(trajectory)


def expected_sgd():
    p, out = list(P0), []
    for _ in range(3):
        g = [gi + WD * pi for gi, pi in zip(grad(p), p, strict=True)]
        p = [pi - LR * gi for pi, gi in zip(p, g, strict=True)]
        out.append(p)
    return np.array(out)


def expected_momentum(nesterov):
    mu, p, b, out = 0.9, list(P0), None, []
    for _ in range(3):
        g = [gi + WD * pi for gi, pi in zip(grad(p), p, strict=True)]
        b = list(g) if b is None else [mu * bi + gi for bi, gi in zip(b, g, strict=True)]
        step = [gi + mu * bi for gi, bi in zip(g, b, strict=True)] if nesterov else b
        p = [pi - LR * si for pi, si in zip(p, step, strict=True)]
        out.append(p)
    return np.array(out)


def expected_adam(decoupled):
    b1, b2, eps = 0.9, 0.999, 1e-8
    p, m, v, out = list(P0), [0.0, 0.0], [0.0, 0.0], []
    for t in range(1, 4):
        g = grad(p)
        if decoupled:
            p = [pi * (1 - LR * WD) for pi in p]
        else:
            g = [gi + WD * pi for gi, pi in zip(g, p, strict=True)]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g, strict=True)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g, strict=True)]
        mhat = [mi / (1 - b1**t) for mi in m]
        vhat = [vi / (1 - b2**t) for vi in v]
        p = [pi - LR * mh / (math.sqrt(vh) + eps) for pi, mh, vh in zip(p, mhat, vhat, strict=True)]
        out.append(p)
    return np.array(out)


def expected_rmsprop():
    alpha, eps = 0.99, 1e-8
    p, v, out = list(P0), [0.0, 0.0], []
    for _ in range(3):
        g = [gi + WD * pi for gi, pi in zip(grad(p), p, strict=True)]
        v = [alpha * vi + (1 - alpha) * gi * gi for vi, gi in zip(v, g, strict=True)]
        p = [pi - LR * gi / (math.sqrt(vi) + eps) for pi, gi, vi in zip(p, g, v, strict=True)]
        out.append(p)
    return np.array(out)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        (SGD(LR, weight_decay=WD), expected_sgd()),
        (Momentum(LR, 0.9, nesterov=False, weight_decay=WD), expected_momentum(False)),
        (Momentum(LR, 0.9, nesterov=True, weight_decay=WD), expected_momentum(True)),
        (Adam(LR, weight_decay=WD), expected_adam(decoupled=False)),
        (AdamW(LR, weight_decay=WD), expected_adam(decoupled=True)),
        (RMSprop(LR, weight_decay=WD), expected_rmsprop()),
    ],
    ids=["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"],
)
def test_three_steps_match_the_definition(optimizer, expected):
    np.testing.assert_allclose(run(optimizer), expected, rtol=1e-12, atol=1e-14)


def test_state_round_trips_through_state_dict():
    a = Adam(0.01)
    run(a, steps=2)
    b = Adam(0.01)
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    assert b.t == 2
    p1 = Param("w", np.array([0.3, 0.4]), np.array([0.1, -0.2]))
    p2 = Param("w", p1.value.copy(), p1.grad.copy())
    a.step([p1])
    b.step([p2])
    assert np.array_equal(p1.value, p2.value)


def test_float32_parameters_stay_float32():
    for cls in (SGD, Momentum, Adam, AdamW, RMSprop):
        param = Param("w", np.ones(3, np.float32), np.full(3, 0.5, np.float32))
        optimizer = cls(0.1)
        optimizer.step([param])
        optimizer.step([param])
        assert param.value.dtype == np.float32
        assert all(buf.dtype == np.float32 for buf in optimizer.state_dict().values() if buf.ndim)


def test_every_configured_name_builds():
    from mlpcli.config import RunConfig
    from mlpcli.train import build_optimizer

    for name in OPTIMIZERS:
        cfg = RunConfig.model_validate({"data": {"source": "iris"}, "optimizer": {"name": name}})
        assert build_optimizer(cfg).lr == cfg.optimizer.lr
