"""Synthetic datasets: small problems that make non-linear boundaries and local minima visible.

Each generator draws `n` rows from its own seeded `numpy.random.Generator` and returns a
`Table` like a CSV file would. The options (and their defaults) are validated in
`mlpcli.config.GENERATORS`; the formulas are documented in datasets/README.md.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from mlpcli.data.files import Table, check_size

Rng = np.random.Generator


def _per_class(n: int, k: int) -> np.ndarray:
    """Class labels for n rows spread over k classes as evenly as possible."""
    return np.repeat(np.arange(k), [n // k + (i < n % k) for i in range(k)])


def _classification(X: np.ndarray, y: np.ndarray, classes: list[str]) -> Table:
    names = [f"x{j}" for j in range(X.shape[1])]
    return Table(X=X, y=y, feature_names=names, target_name="class", class_names=classes)


def xor(rng: Rng, n: int, noise: float) -> Table:
    """Points around the corners (+-1, +-1); class 1 where the two signs differ."""
    corner = np.arange(n) % 4  # n=4, noise=0: exactly the truth table
    signs = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    X = signs[corner] + noise * rng.standard_normal((n, 2))
    y = np.array([0, 1, 1, 0])[corner]
    return _classification(X, y, ["0", "1"])


def spirals(rng: Rng, n: int, noise: float, arms: int, turns: float) -> Table:
    """`arms` spirals from the centre outwards, each one class; noise jitters the angle."""
    y = _per_class(n, arms)
    r = rng.uniform(0.0, 1.0, n)
    # Angular noise moves a point by r * noise: the crowded centre stays separable.
    theta = 2 * np.pi * (turns * r + y / arms) + noise * rng.standard_normal(n)
    X = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    return _classification(X, y, [f"arm{k}" for k in range(arms)])


def moons(rng: Rng, n: int, noise: float) -> Table:
    """Two interleaving half circles (as scikit-learn's make_moons)."""
    y = _per_class(n, 2)
    t = rng.uniform(0.0, np.pi, n)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    X = np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2))
    return _classification(X, y, ["upper", "lower"])


def circles(rng: Rng, n: int, noise: float, factor: float) -> Table:
    """A circle of radius `factor` inside one of radius 1."""
    y = _per_class(n, 2)
    t = rng.uniform(0.0, 2 * np.pi, n)
    radius = np.where(y == 0, 1.0, factor)
    X = radius[:, None] * np.column_stack([np.cos(t), np.sin(t)])
    X += noise * rng.standard_normal((n, 2))
    return _classification(X, y, ["outer", "inner"])


def sine(rng: Rng, n: int, noise: float, periods: float) -> Table:
    """y = sin(x) + noise for x uniform over `periods` periods centred on 0."""
    x = rng.uniform(-np.pi * periods, np.pi * periods, n)
    y = np.sin(x) + noise * rng.standard_normal(n)
    return Table(X=x[:, None], y=y, feature_names=["x"], target_name="y")


def friedman1(rng: Rng, n: int, noise: float, features: int) -> Table:
    """Friedman (1991) #1: uniform inputs, 5 of them informative, the rest noise."""
    X = rng.uniform(0.0, 1.0, (n, features))
    y = (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
        + noise * rng.standard_normal(n)
    )
    names = [f"x{j}" for j in range(features)]
    return Table(X=X, y=y, feature_names=names, target_name="y")


GENERATE: dict[str, Callable[..., Table]] = {
    "xor": xor,
    "spirals": spirals,
    "moons": moons,
    "circles": circles,
    "sine": sine,
    "friedman1": friedman1,
}


def generate(name: str, options: dict[str, Any], run_seed: int) -> Table:
    """Draw a generated dataset; its own `seed` option, else the run's seed, drives it."""
    kwargs = dict(options)
    columns = int(kwargs.get("features", 1 if name == "sine" else 2)) + 1
    check_size(int(kwargs["n"]), columns, f"generated '{name}'", "lower data.generator.n")
    seed = kwargs.pop("seed", None)
    # [seed, 2]: a stream apart from the split's [seed, 0] and training's [seed, 1]
    rng = np.random.default_rng([run_seed if seed is None else seed, 2])
    return GENERATE[name](rng, **kwargs)
