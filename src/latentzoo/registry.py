"""The model registry: every rung of the ladder under a name, with its preset parameters.

Models join the CLI, the comparison, the report and the common contract test by
registration (:func:`register_model`), never by an if/elif chain. This module imports
nothing of latentzoo, so the model modules, persistence and the CLI all depend on it
without an import circle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelSpec", "MODELS", "register_model", "make_model"]


@dataclass(frozen=True)
class ModelSpec:
    """A named rung of the ladder: an estimator class and its preset parameters."""

    name: str
    cls: type
    params: dict = field(default_factory=dict)
    description: str = ""

    def make(self, **overrides) -> Any:
        return self.cls(**{**self.params, **overrides})


#: name -> ModelSpec, in ladder order (insertion order)
MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, cls: type | None = None, *, description: str = "", **params):
    """Register a model under ``name`` (with preset parameters).

    Use as a class decorator (``@register_model("pca")``) or as a call that adds a
    preset of an existing class (``register_model("dae", Autoencoder, noise="gaussian:0.2")``).
    """

    def deco(c: type) -> type:
        if name in MODELS and MODELS[name].cls is not c:
            raise ValueError(f"model name {name!r} is already registered to {MODELS[name].cls.__name__}")
        MODELS[name] = ModelSpec(name, c, dict(params), description)
        return c

    return deco(cls) if cls is not None else deco


def make_model(name: str, **overrides) -> Any:
    """Instantiate the registered model ``name``; unknown names get a clear error."""
    try:
        spec = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
    return spec.make(**overrides)
