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
    "check_finite",
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
    means the value ``None`` is allowed. Raises ``ValueError`` for any rejected value,
    of a wrong type as well as out of range (scikit-learn's ``InvalidParameterError`` is
    a ``ValueError`` too), naming the estimator, the parameter and the accepted values.
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


def check_finite(X: np.ndarray, *, allow_nan: bool = False, what: str = "X", columns=None,
                 row_names=None, row_offset: int = 0, counted: bool = True, nan_hint: str = "") -> None:
    """Reject inf always and NaN unless ``allow_nan``, naming the first bad entry.

    The one finite-value check of latentzoo: estimator input and latent codes, loaded
    data sets, chunks of a streamed array. Rows and columns are **counted from 0**, as
    numpy indexes them (the message's ``row 4, column 2`` is ``X[4, 2]``). Data read
    from a text file name their rows by ``row_names`` instead (``"line 7"``, the line an
    editor shows); ``columns`` adds a column's name to its index.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    allow_nan : bool, default=False
    what : str, default="X"
        What the array is, the message's subject (a parameter name or a file).
    columns, row_names : sequence, optional
        Column names and row names (``row_names[i]`` names row ``i``).
    row_offset : int, default=0
        Index of ``X``'s first row in the whole array (a chunk of a stream).
    counted : bool, default=True
        Whether ``X`` is the whole array, so the message counts its bad values.
    nan_hint : str, default=""
        Appended to the message when the first bad value is a NaN (how to keep missing values).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((5, 3)); X[4, 2] = np.nan
    >>> check_finite(X)
    Traceback (most recent call last):
    ...
    ValueError: X contains 1 non-finite value(s) (NaN first at row 4, column 2; rows and columns count from 0).
    """
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.complexfloating)):
        return
    if not allow_nan:
        # fast path (as scikit-learn's): a finite sum means no NaN/inf, with no boolean
        # array of X's size; an overflowing sum falls through to the exact scan
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(X.sum()):
                return
    bad = np.isinf(X) if allow_nan else ~np.isfinite(X)
    if not bad.any():
        return
    r, c = (int(v) for v in np.argwhere(bad)[0])
    kind = "NaN" if np.isnan(X[r, c]) else "inf"
    row = row_names[r] if row_names is not None else f"row {r + row_offset}"
    col = f"column {columns[c]!r} (index {c})" if columns is not None else f"column {c}"
    count = "rows and columns count from 0" if row_names is None else "columns count from 0"
    n = f"{int(bad.sum())} non-finite value(s)" if counted else "non-finite values"
    hint = nan_hint if kind == "NaN" else ""
    raise ValueError(f"{what} contains {n} ({kind} first at {row}, {col}; {count}){hint}.")
