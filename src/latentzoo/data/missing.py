"""Data with missing values (NaN) in the ladder: which models can take them, and how.

A model takes missing values when its scikit-learn tags say ``allow_nan`` (PPCA with
``method="em"`` marginalises them, Tipping & Bishop 1999, App. A; Ilin & Raiko 2010).
A class whose default settings do not may name the parameters that make it able
(``_imputer_params()``, e.g. PPCA's ``{"method": "em"}``); the comparison and ``fit``
then use those, unless the user set them otherwise. Models that cannot take missing
values are left out of a comparison with the reason in the report.

Metrics on data with missing values use the observed entries only where a metric
compares a reconstruction with the data (the squared error sums the observed
coordinates), and a column-mean filled copy of the data where it needs distances
between data points (trustworthiness, prior realism and its reference).
"""
from __future__ import annotations

import numpy as np

__all__ = ["missing_value_params", "fill_column_means", "has_missing", "cannot_take_missing"]


def has_missing(X) -> bool:
    """Whether ``X`` holds NaN (memory-mapped arrays are validated by the models themselves)."""
    return not isinstance(X, np.memmap) and bool(np.isnan(np.asarray(X, dtype=np.float64).sum()))


def _allows_nan(est) -> bool:
    try:
        return bool(est.__sklearn_tags__().input_tags.allow_nan)
    except AttributeError:
        return False


def missing_value_params(cls, params: dict, *, user: set = frozenset()) -> dict | None:
    """The parameter overrides under which ``cls(**params)`` fits data with NaN: ``{}``
    when it already does, the class's ``_imputer_params()`` (minus those in ``user``, the
    parameters the user set) when they make it able, else None (it cannot)."""
    if _allows_nan(cls(**params)):
        return {}
    hook = getattr(cls, "_imputer_params", None)
    if hook is None:
        return None
    extra = {k: v for k, v in hook().items() if k not in user}
    return extra if extra and _allows_nan(cls(**{**params, **extra})) else None


def cannot_take_missing(name: str, n_missing: int) -> str:
    """The report's reason for leaving a model out."""
    return (f"{name} cannot fit data with missing values ({n_missing} missing entries); left out "
            "(models that can: those whose fit marginalises NaN, e.g. PPCA with method='em')")


def fill_column_means(X) -> np.ndarray:
    """``X`` with every NaN replaced by its column's observed mean (0 for an empty column)."""
    X = np.array(X, dtype=np.float64)
    miss = np.isnan(X)
    if miss.any():
        with np.errstate(invalid="ignore"):
            counts = (~miss).sum(axis=0)
            means = np.where(counts > 0, np.nansum(X, axis=0) / np.maximum(counts, 1), 0.0)
        X[miss] = np.take(means, np.nonzero(miss)[1])
    return X
