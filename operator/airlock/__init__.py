"""Airlock: a Kubernetes admission controller and operator holding AI workloads to a baseline."""

__version__ = "0.1.0"

__all__ = ["__version__"]
