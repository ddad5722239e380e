"""Parameter and input validation shared by every estimator.

scikit-learn's own constraint machinery is private, so latentzoo keeps a small
declarative validator of its own: each estimator lists, per constructor parameter,
the constraints it accepts (``_parameter_constraints``), and ``fit`` calls
:func:`validate_params` first. Errors name the parameter, the value and what was
expected.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "Interval",
    "Options",
    "Instance",
    "Callable_",
    "validate_params",
    "check_finite_or_nan",
]


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``kind`` is ``"int"`` or ``"real"``; bounds ``None`` are open."""

    kind: str
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool):
            return False
        if self.kind == "int" and not isinstance(v, numbers.Integral):
            return False
        if self.kind == "real" and not isinstance(v, numbers.Real):
            return False
        if isinstance(v, numbers.Real) and not np.isfinite(v):
            return False
        lo_ok = self.low is None or (v >= self.low if self.closed in ("both", "left") else v > self.low)
        hi_ok = self.high is None or (v <= self.high if self.closed in ("both", "right") else v < self.high)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        kind = "an integer" if self.kind == "int" else "a real number"
        lb = "[" if self.closed in ("both", "left") else "("
        rb = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        return f"{kind} in {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (typically strings)."""

    values: tuple

    def accepts(self, v: Any) -> bool:
        try:
            return v in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(x) for x in self.values)


@dataclass(frozen=True)
class Instance:
    """An instance of the given type(s) (``None`` is accepted only if listed)."""

    types: tuple
    name: str = ""

    def accepts(self, v: Any) -> bool:
        return isinstance(v, self.types) and not (isinstance(v, bool) and bool not in self.types)

    def __str__(self) -> str:
        return self.name or "an instance of " + " or ".join(t.__name__ for t in self.types)


@dataclass(frozen=True)
class Callable_:
    """A predicate with a description, for constraints the other kinds cannot say."""

    predicate: Callable[[Any], bool]
    description: str

    def accepts(self, v: Any) -> bool:
        try:
            return bool(self.predicate(v))
        except Exception:
            return False

    def __str__(self) -> str:
        return self.description


def _describe(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def validate_params(estimator) -> None:
    """Check every constructor parameter against ``estimator._parameter_constraints``.

    Each entry maps a parameter name to a list of constraints; ``None`` in the list
    means the value ``None`` is allowed. Raises ``ValueError`` (or ``TypeError`` for a
    value of the wrong type entirely) naming the estimator, the parameter and the
    accepted values.
    """
    constraints = getattr(estimator, "_parameter_constraints", {})
    params = estimator.get_params(deep=False)
    for name, allowed in constraints.items():
        if name not in params:
            continue
        v = params[name]
        if v is None and None in allowed:
            continue
        checks = [c for c in allowed if c is not None]
        if any(c.accepts(v) for c in checks):
            continue
        expected = " or ".join(str(c) for c in checks)
        if None in allowed:
            expected += " or None"
        cls = type(estimator).__name__
        raise ValueError(
            f"{cls}: invalid value for parameter '{name}': {_describe(v)}; expected {expected}."
        )


def check_finite_or_nan(X: np.ndarray, *, allow_nan: bool, what: str = "X") -> None:
    """Reject inf always and NaN unless ``allow_nan``; the message names rows and columns."""
    if np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.complexfloating):
        if not allow_nan:
            # fast path (as scikit-learn's): a finite sum means no NaN/inf, with no boolean
            # array of X's size; an overflowing sum falls through to the exact scan
            with np.errstate(over="ignore", invalid="ignore"):
                if np.isfinite(X.sum()):
                    return
        bad = ~np.isfinite(X) if not allow_nan else np.isinf(X)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            kind = "NaN" if np.isnan(X[r, c]) else "inf"
            n = int(bad.sum())
            hint = "" if allow_nan or what != "X" else " (only PPCA(method='em') accepts missing values as NaN)"
            raise ValueError(
                f"{what} contains {n} non-finite value(s) ({kind} first at row {r}, column {c}){hint}."
            )
