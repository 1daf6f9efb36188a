"""The numerical engine: activations, losses, the MLP, optimizers, gradient checks.

Imports NumPy and nothing else of mlpcli: no files, no YAML, no terminal.
"""

from mlpcli.engine.activations import ACTIVATIONS, DERIVATIVES
from mlpcli.engine.losses import LOSSES, OUTPUTS
from mlpcli.engine.model import INITIALIZERS, MLP, Param
from mlpcli.engine.optimizers import OPTIMIZERS, Optimizer

__all__ = [
    "ACTIVATIONS",
    "DERIVATIVES",
    "INITIALIZERS",
    "LOSSES",
    "MLP",
    "OPTIMIZERS",
    "OUTPUTS",
    "Optimizer",
    "Param",
]
