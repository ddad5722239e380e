"""Choosing an imputer's hyperparameters without the entries it is asked to fill.

An imputer fitted on an incomplete table cannot be scored on the entries it fills (they
are unknown). What can be scored is how well it recovers entries that *were* observed:
hide a further random fraction of the observed entries, fit on what is left, and measure
the RMSE on the hidden-again ones. Under MCAR the extra entries are missing by the same
mechanism as the real ones, so this estimates the imputation error of each candidate
(the "masking" validation of Troyanskaya et al. 2001 and of Josse & Husson 2012 for PCA
imputation; Ilin & Raiko 2010 choose PPCA's dimension so). The split is repeated on
``cv`` disjoint sets of observed entries and the squared errors pooled.
"""
from __future__ import annotations

import numpy as np

__all__ = ["holdout_masks", "validation_rmse"]


def holdout_masks(X: np.ndarray, fraction: float, n_splits: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_splits`` disjoint boolean masks (same shape as ``X``), each marking a random
    ``fraction`` of the observed (non-NaN) entries. Entries a mask would leave some column
    of ``X`` without observed values are dropped from it (a model cannot fit a column it
    never sees)."""
    obs = np.flatnonzero(~np.isnan(X).ravel())
    per = max(1, int(round(fraction * obs.size)))
    if per * n_splits > obs.size:
        raise ValueError(f"cannot hold out {n_splits} disjoint sets of {per} of the {obs.size} observed "
                         f"entries of X (fewer observed entries than held-out sets)")
    order = rng.permutation(obs)
    n_obs_col = (~np.isnan(X)).sum(axis=0)
    masks = []
    for k in range(n_splits):
        m = np.zeros(X.size, dtype=bool)
        m[order[k * per:(k + 1) * per]] = True
        m = m.reshape(X.shape)
        emptied = m.sum(axis=0) >= n_obs_col  # a column left with nothing observed: keep it all
        m[:, emptied] = False
        masks.append(m)
    return masks


def validation_rmse(make_and_impute, X: np.ndarray, masks: list[np.ndarray]) -> tuple[float, list[float]]:
    """Pooled RMSE over the masks of ``make_and_impute(X_with_mask_hidden)`` against ``X``,
    and the RMSE of each split. ``make_and_impute`` fits a fresh model on its argument and
    returns it imputed."""
    sq, count, per_split = 0.0, 0, []
    for m in masks:
        Xv = X.copy()
        Xv[m] = np.nan
        err = np.asarray(make_and_impute(Xv), dtype=np.float64)[m] - X[m]
        sq += float(err @ err)
        count += err.size
        per_split.append(float(np.sqrt(np.mean(err ** 2))) if err.size else float("nan"))
    return float(np.sqrt(sq / max(count, 1))), per_split
