"""mlpcli: train multilayer perceptrons from YAML configs on a NumPy engine."""

__version__ = "0.1.0"
