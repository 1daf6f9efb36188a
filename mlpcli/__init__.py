"""mlpcli: train multilayer perceptrons from YAML configs on a NumPy engine.

The Python API (docs/api.md): `mlpcli.train`, `mlpcli.load`, `mlpcli.compare`,
`mlpcli.tune`, with `Run`, `Model` and `Comparison`; errors are `mlpcli.UserError`. They
are imported on first use, so that `import mlpcli` (and the CLI's `--help`) stays fast.

`mlpcli.train`, `mlpcli.compare` and `mlpcli.tune` are these functions even though modules of
the same names exist (the training loop, the run comparison, the search): reach those with
`from mlpcli.train import Trainer` or `importlib.import_module("mlpcli.train")`.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

from mlpcli.errors import TrainingFailed, UserError

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Model",
    "Run",
    "TrainingFailed",
    "UserError",
    "Validation",
    "__version__",
    "compare",
    "load",
    "resume",
    "train",
    "tune",
    "validate",
]

_API = (
    "Comparison",
    "Model",
    "Run",
    "Validation",
    "compare",
    "load",
    "resume",
    "train",
    "tune",
    "validate",
)

if TYPE_CHECKING:
    from mlpcli.api import (
        Comparison,
        Model,
        Run,
        Validation,
        compare,
        load,
        resume,
        train,
        tune,
        validate,
    )


def _api_attribute(name: str) -> property:
    """`mlpcli.<name>`: the API's object, imported on first use. Importing the submodule of
    the same name (mlpcli/train.py) stores it aside instead of replacing the function."""

    def get(package: types.ModuleType) -> Any:
        from mlpcli import api

        return getattr(api, name)

    def keep_submodule(package: types.ModuleType, value: Any) -> None:
        package.__dict__[f"_module_{name}"] = value

    return property(get, keep_submodule)


class _Package(types.ModuleType):
    """The mlpcli package, whose API names win over its submodules of the same name."""


for _name in _API:
    setattr(_Package, _name, _api_attribute(_name))
sys.modules[__name__].__class__ = _Package
