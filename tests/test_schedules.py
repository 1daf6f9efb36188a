"""Learning-rate schedules at known epochs (epochs counted from 0, as torch's schedulers)."""

import math

import pytest

from mlpcli.engine import schedules as s


def test_constant():
    assert [s.Constant(0.1).lr(e) for e in (0, 5, 99)] == [0.1, 0.1, 0.1]


def test_step():
    sched = s.Step(1.0, step_size=10, gamma=0.5)
    assert [sched.lr(e) for e in (0, 9, 10, 19, 20)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_exponential():
    sched = s.Exponential(2.0, gamma=0.9)
    assert sched.lr(0) == 2.0
    assert sched.lr(3) == pytest.approx(2.0 * 0.9**3)


def test_cosine_without_warmup_matches_cosine_annealing():
    sched = s.Cosine(1.0, t_max=10, eta_min=0.1, warmup=0)
    assert sched.lr(0) == pytest.approx(1.0)
    assert sched.lr(5) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 2)) / 2)
    assert sched.lr(10) == pytest.approx(0.1)
    assert sched.lr(50) == pytest.approx(0.1)  # stays at eta_min after t_max


def test_cosine_warmup_ramps_linearly_then_decays():
    sched = s.Cosine(1.0, t_max=12, eta_min=0.0, warmup=3)
    assert [sched.lr(e) for e in range(3)] == pytest.approx([0.25, 0.5, 0.75])
    assert sched.lr(3) == pytest.approx(1.0)
    assert sched.lr(12) == pytest.approx(0.0)


def test_plateau_reduces_after_patience_and_respects_min_lr():
    sched = s.Plateau(1.0, minimize=True, factor=0.5, patience=2, min_delta=0.0, min_lr=0.3)
    lrs = []
    for value in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        sched.observe(value)
        lrs.append(sched.lr(0))
    # improvement at 1 and 2, then three non-improving epochs (> patience 2) -> halve
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3]


def test_plateau_on_a_metric_to_maximise():
    sched = s.Plateau(1.0, minimize=False, factor=0.1, patience=0, min_delta=0.0, min_lr=0.0)
    sched.observe(0.5)
    sched.observe(0.6)
    assert sched.lr(0) == 1.0
    sched.observe(0.55)
    assert sched.lr(0) == pytest.approx(0.1)
