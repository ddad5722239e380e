"""Preprocessing of raw data before a latent model, invertible back to the user's scale.

:class:`Preprocessor` is a scikit-learn transformer with one ``method``:

``"none"``
    the data as they are;
``"minmax"``
    ``(x - min) / (max - min)`` per feature, into [0, 1];
``"standard"``
    ``(x - mean) / std`` per feature (population std; constant features keep scale 1);
``"log1p"``
    ``log(1 + x)`` (data above -1), for non-negative counts (raw RNA-seq counts, word counts);
``"log1p+standard"``
    ``log1p`` then ``standard`` (the usual log-normalised, scaled expression matrix);
``"scale255"``
    ``x / 255``, 8-bit images into [0, 1];
``"auto"``
    chosen from the data (:func:`resolve_auto`): ``uint8`` data -> ``scale255``;
    non-negative integer counts (not only 0/1) -> ``log1p``; other data whose columns'
    ranges (max - min) differ by more than :data:`SCALE_SPREAD` (e.g. areas in the thousands
    next to ratios near 0.1; not image pixels, which share one range however rarely they are
    lit) -> ``standard``, since a neural network's inputs and a
    unit-variance Gaussian decoder assume comparable scales (LeCun et al. 1998, "Efficient
    BackProp", sec. 4.3); anything else -> ``none``.

Statistics ignore missing values (NaN), which pass through as NaN. ``inverse_transform``
undoes the transformation exactly (``expm1`` for ``log1p``), so a pipeline

>>> from sklearn.pipeline import make_pipeline
>>> from latentzoo import PPCA
>>> from latentzoo.preprocessing import Preprocessor
>>> import numpy as np
>>> counts = np.random.default_rng(0).poisson(5.0, size=(100, 6))
>>> pipe = make_pipeline(Preprocessor("log1p+standard"), PPCA(n_components=2)).fit(counts)
>>> Z = pipe.transform(counts)               # codes of the raw counts
>>> pipe.inverse_transform(Z).shape          # decoded back on the counts' own scale
(100, 6)

takes and gives data on the user's original scale. The CLI's ``--preprocess`` applies
the same transformer (saved beside the model as ``preprocess.json``).
"""
from __future__ import annotations

import json

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import Options, validate_params

__all__ = ["Preprocessor", "METHODS", "resolve_auto", "describe"]

#: method -> the steps it applies, in order
METHODS: dict[str, tuple[str, ...]] = {
    "none": (), "minmax": ("minmax",), "standard": ("standard",), "log1p": ("log1p",),
    "log1p+standard": ("log1p", "standard"), "scale255": ("scale255",),
}
#: ``auto`` standardises data whose non-constant columns' ranges differ by more than this factor
SCALE_SPREAD = 100.0
#: values per chunk when a statistic is accumulated over the rows (memory maps stay unread whole)
_CHUNK_VALUES = 2**20


def _row_chunks(X):
    """Row slices of ``X`` holding about :data:`_CHUNK_VALUES` values each."""
    rows = max(1, _CHUNK_VALUES // max(1, X.shape[1]))
    return (slice(i, i + rows) for i in range(0, X.shape[0], rows))


def resolve_auto(X, stored_dtype=None) -> tuple[str, str]:
    """The method ``"auto"`` picks for ``X`` (``stored_dtype``: the dtype of the file, when
    ``X`` was converted on loading), with the reason in words."""
    dtype = np.dtype(stored_dtype) if stored_dtype is not None else np.asarray(X[:0]).dtype
    if dtype == np.uint8:
        return "scale255", "8-bit data (uint8): divided by 255 into [0, 1]"
    lo, hi, integral = np.inf, -np.inf, True
    cmin, cmax = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)  # per column, observed values
    for sl in _row_chunks(X):
        c = np.asarray(X[sl], dtype=np.float64)
        ok = np.isfinite(c)
        v = c[ok]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
            integral = integral and bool(np.all(v == np.round(v)))
            cmin = np.minimum(cmin, np.where(ok, c, np.inf).min(0))
            cmax = np.maximum(cmax, np.where(ok, c, -np.inf).max(0))
    if np.isfinite(lo) and lo >= 0 and integral and hi > 1:
        return "log1p", f"non-negative integer counts (0 to {hi:g}): log(1 + x)"
    span = cmax - cmin
    span = span[np.isfinite(span) & (span > 0)]  # constant and unobserved columns have no scale
    if span.size >= 2 and span.max() > SCALE_SPREAD * span.min():
        return "standard", (f"column ranges from {span.min():.3g} to {span.max():.3g} wide (more than "
                            f"{SCALE_SPREAD:g}x apart): (x - mean) / sd per column")
    return "none", ("no rule applies (not uint8, not non-negative integer counts, column ranges within "
                    f"{SCALE_SPREAD:g}x): data used as they are")


def describe(method: str, reason: str | None = None) -> str:
    """One line for a report's setup, e.g. ``"log1p (auto: non-negative integer counts ...)"``."""
    return method if reason is None else f"{method} (auto: {reason})"


class Preprocessor(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Invertible per-feature preprocessing; see the module docstring for the methods.

    Parameters
    ----------
    method : str, default="auto"
        One of ``"auto"``, ``"none"``, ``"minmax"``, ``"standard"``, ``"log1p"``,
        ``"log1p+standard"``, ``"scale255"``.

    Attributes
    ----------
    method_ : str
        The method applied (``"auto"`` resolved).
    reason_ : str or None
        Why ``"auto"`` chose ``method_`` (None when the method was given).
    offset_, scale_ : ndarray of shape (n_features,)
        ``minmax``/``standard``: ``(x - offset_) / scale_`` after any ``log1p``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when fitted on a DataFrame with string column names.
    """

    _parameter_constraints = {"method": [Options(("auto", *METHODS))]}

    def __init__(self, method="auto"):
        self.method = method

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None, *, stored_dtype=None):
        """Resolve ``auto`` (from ``X``'s dtype, or ``stored_dtype``) and fit the statistics."""
        validate_params(self)
        if self.method == "auto":
            self.method_, self.reason_ = resolve_auto(X if hasattr(X, "dtype") else np.asarray(X), stored_dtype)
        else:
            self.method_, self.reason_ = self.method, None
        if isinstance(X, np.memmap):  # checked chunk by chunk below, never converted whole
            if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
                raise ValueError(f"Preprocessor: expected a 2-D numeric array, got {X.dtype} of shape {X.shape}")
            self.n_features_in_ = X.shape[1]
        else:
            X = validate_data(self, X, reset=True, dtype=None, ensure_all_finite="allow-nan")
        steps = METHODS[self.method_]
        if "log1p" in steps:
            lo = _nanmin(X)
            if lo <= -1:
                raise ValueError(f"Preprocessor(method={self.method_!r}): log1p needs data above -1 (counts "
                                 f"are >= 0); the minimum is {lo:g} (use 'standard' or 'minmax')")
        d = X.shape[1]
        self.offset_, self.scale_ = np.zeros(d), np.ones(d)
        if "minmax" in steps or "standard" in steps:
            self._fit_scale(X, steps)
        return self

    def _fit_scale(self, X, steps) -> None:
        """Per-feature min/max or mean/std over row chunks (a memory map is never read whole)."""
        d = X.shape[1]
        n, s, s2 = np.zeros(d), np.zeros(d), np.zeros(d)
        lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
        for sl in _row_chunks(X):
            c = self._pre_scale(np.asarray(X[sl], dtype=np.float64), steps)
            ok = ~np.isnan(c)
            n += ok.sum(0)
            s += np.where(ok, c, 0).sum(0)
            lo, hi = np.minimum(lo, np.where(ok, c, np.inf).min(0)), np.maximum(hi, np.where(ok, c, -np.inf).max(0))
        mean = np.where(n > 0, s / np.maximum(n, 1), 0.0)
        if "standard" in steps:  # second pass about the mean: no cancellation
            for sl in _row_chunks(X):
                c = self._pre_scale(np.asarray(X[sl], dtype=np.float64), steps) - mean
                s2 += np.where(np.isnan(c), 0, c * c).sum(0)
            std = np.sqrt(s2 / np.maximum(n, 1))
            self.offset_, self.scale_ = mean, np.where(std > 0, std, 1.0)
        else:
            rng = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
            self.offset_, self.scale_ = np.where(np.isfinite(lo), lo, 0.0), np.where(rng > 0, rng, 1.0)

    @staticmethod
    def _pre_scale(X, steps):
        out = X
        if "log1p" in steps:
            out = np.log1p(out)
        if "scale255" in steps:
            out = out / 255.0
        return out

    def transform(self, X):
        """The preprocessed data, float64 (NaN stays NaN)."""
        check_is_fitted(self, "method_")
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        steps = METHODS[self.method_]
        if "log1p" in steps and _nanmin(X) <= -1:
            raise ValueError(f"Preprocessor(method={self.method_!r}): log1p needs data above -1; "
                             f"the minimum is {_nanmin(X):g}")
        return (self._pre_scale(X, steps) - self.offset_) / self.scale_

    def inverse_transform(self, X):
        """Back on the original scale: ``offset_ + scale_ * x``, then ``* 255`` or ``expm1``."""
        check_is_fitted(self, "method_")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"Preprocessor.inverse_transform: expected shape (n, {self.n_features_in_}), "
                             f"got {X.shape}")
        out = X * self.scale_ + self.offset_
        steps = METHODS[self.method_]
        if "scale255" in steps:
            out = out * 255.0
        if "log1p" in steps:
            out = np.expm1(out)
        return out

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> str:
        """The fitted state as JSON (the CLI's ``preprocess.json``; floats round-trip exactly)."""
        check_is_fitted(self, "method_")
        state = {"method": self.method, "method_": self.method_, "reason_": self.reason_,
                 "n_features_in_": int(self.n_features_in_), "offset_": self.offset_.tolist(),
                 "scale_": self.scale_.tolist()}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(v) for v in self.feature_names_in_]
        return json.dumps(state)

    @classmethod
    def from_json(cls, text: str) -> "Preprocessor":
        """A fitted :class:`Preprocessor` from :meth:`to_json`'s text."""
        state = json.loads(text)
        pre = cls(method=state["method"])
        pre.method_, pre.reason_ = state["method_"], state.get("reason_")
        pre.n_features_in_ = int(state["n_features_in_"])
        pre.offset_ = np.asarray(state["offset_"], dtype=np.float64)
        pre.scale_ = np.asarray(state["scale_"], dtype=np.float64)
        if "feature_names_in_" in state:
            pre.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        if pre.method_ not in METHODS or pre.offset_.shape != (pre.n_features_in_,) \
                or pre.scale_.shape != (pre.n_features_in_,):
            raise ValueError("preprocess.json: inconsistent preprocessing state")
        return pre

    def transform_to_memmap(self, X, path) -> np.memmap:
        """Preprocess a memory-mapped ``X`` into a float32 ``.npy`` at ``path``, chunk by
        chunk (memory bounded), and return it mapped read-only."""
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=X.shape)
        for sl in _row_chunks(X):
            out[sl] = self.transform(np.asarray(X[sl]))
        out.flush()
        del out
        return np.load(path, mmap_mode="r", allow_pickle=False)


def _nanmin(X) -> float:
    lo = np.inf
    for sl in _row_chunks(X):
        c = np.asarray(X[sl], dtype=np.float64)
        if np.isfinite(c).any():
            lo = min(lo, float(np.nanmin(c)))
    return lo
