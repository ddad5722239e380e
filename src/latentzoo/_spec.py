"""Registries of families named by a spec string ``"name"`` or ``"name:number[,number]"``.

Likelihoods (``"gaussian:0.1"``) and corruptions (``"masking:0.25"``) are both chosen this
way; :func:`from_spec` is the one parser, so both give the same errors.
"""
from __future__ import annotations

from typing import Any, Callable


def from_spec(spec, *, registry: dict[str, Callable[..., Any]], base: type, kind: str, param: str,
              example: str):
    """An instance of ``base`` from an instance (returned as is) or a spec string.

    Parameters
    ----------
    spec : base instance or str
    registry : dict
        name -> factory taking the numbers after ``name:``.
    base : type
    kind, param, example : str
        Words for the error messages: the family (``"likelihood"``), the estimator
        parameter that takes it (``"noise"``) and an example spec.
    """
    if isinstance(spec, base):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"{param} must be a {kind} name such as {example!r} or a {base.__name__}, got {spec!r}")
    name, _, arg = spec.partition(":")
    if name not in registry:
        raise ValueError(f"unknown {kind} {spec!r}; known: {', '.join(registry)}")
    try:
        args = [float(a) for a in arg.split(",")] if arg else []
    except ValueError:
        raise ValueError(f"{kind} {spec!r}: the argument after ':' must be a number") from None
    try:
        return registry[name](*args)
    except TypeError:
        raise ValueError(f"{kind} {spec!r}: {name} takes {_arity_words(registry[name])}") from None


def accepts(make: Callable[[Any], Any]) -> Callable[[Any], bool]:
    """A predicate ``spec -> bool``: whether ``make(spec)`` builds a family member (for validation)."""

    def is_valid(spec) -> bool:
        try:
            make(spec)
            return True
        except ValueError:
            return False

    return is_valid


def _arity_words(factory) -> str:
    import inspect

    try:
        n = len(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        n = 0
    return {0: "no argument", 1: "at most one number"}.get(n, f"at most {n} numbers")
