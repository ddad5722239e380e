"""The report's imputation section: how well each fitted model fills entries it never saw.

On data with missing values, :func:`imputation_table` hides a further ``rate`` of the
*observed* entries of the held-out rows (missing completely at random, seeded), asks every
fitted model that imputes (``impute``: PPCA's exact conditional mean, the VAE's
importance-sampled one, the autoencoders' reconstruction, PCA's subspace fit) to fill
them, and scores the root mean squared error on those hidden entries only. scikit-learn's
``SimpleImputer(mean)`` and ``KNNImputer`` (k = 5), fitted on the training rows, are the
references. The models were fitted on the training rows, so the held-out rows and their
hidden entries are new to every imputer.
"""
from __future__ import annotations

import logging
import time

import numpy as np

__all__ = ["IMPUTATION_RATE", "imputation_table", "REFERENCES"]

logger = logging.getLogger(__name__)

#: fraction of the observed held-out entries hidden for the imputation section
IMPUTATION_RATE = 0.2


def _references():
    from sklearn.impute import KNNImputer, SimpleImputer

    return {"mean (sklearn SimpleImputer)": SimpleImputer(strategy="mean"),
            "kNN (sklearn KNNImputer, k=5)": KNNImputer(n_neighbors=5)}


#: the reference imputers, by the name the table shows (fitted on the training rows)
REFERENCES = tuple(_references())


def hide(X: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``X`` with a further ``rate`` of its observed entries set to NaN, and that mask."""
    rng = np.random.default_rng(seed)
    hidden = (rng.random(X.shape) < rate) & ~np.isnan(X)
    Xh = np.array(X, dtype=np.float64, copy=True)
    Xh[hidden] = np.nan
    return Xh, hidden


def imputation_table(models: dict, X_train, X_test, *, rate: float = IMPUTATION_RATE, seed: int = 0,
                     n_importance: int | None = None) -> dict | None:
    """RMSE on entries hidden from the held-out rows, for every model and the references.

    Parameters
    ----------
    models : dict
        Display name -> fitted estimator; those without ``impute`` are listed as ``None``.
    X_train, X_test : ndarray
        The training rows (for the references) and the held-out rows (NaN = missing).
    rate : float
        Fraction of the observed held-out entries hidden.
    n_importance : int, optional
        Importance samples of the VAE's imputation (its ``impute`` default if None).

    Returns
    -------
    dict or None
        ``{"rate", "seed", "n_rows", "n_hidden", "rows": [{"imputer", "kind", "rmse",
        "time_s"}], "description"}``; None when nothing is hidden (no held-out data).
    """
    X_test = np.asarray(X_test, dtype=np.float64)
    Xh, hidden = hide(X_test, rate, seed)
    if not hidden.any():
        return None
    truth = X_test[hidden]
    rows = []
    for name, est in models.items():
        rows.append(_score(name, "model", est, Xh, hidden, truth, n_importance))
    X_train = np.asarray(X_train, dtype=np.float64)
    for name, ref in _references().items():
        rows.append(_score(name, "reference", ref.fit(X_train), Xh, hidden, truth, None))
    return {"rate": rate, "seed": seed, "n_rows": int(len(X_test)), "n_hidden": int(hidden.sum()), "rows": rows,
            "description": (f"{rate:.0%} of the observed entries of the {len(X_test)} held-out rows hidden "
                            f"at random (seed {seed}); RMSE on those {int(hidden.sum())} entries; models and "
                            "references fitted on the training rows only")}


def _score(name, kind, est, Xh, hidden, truth, n_importance) -> dict:
    if kind == "model" and not hasattr(est, "impute"):
        return {"imputer": name, "kind": kind, "rmse": None, "time_s": None, "note": "no impute"}
    t0 = time.perf_counter()
    try:
        if kind == "reference":
            filled = est.transform(Xh)
        elif n_importance is not None and "n_importance" in _params(est.impute):
            filled = est.impute(Xh, n_importance=n_importance)
        else:
            filled = est.impute(Xh)
    except ValueError as e:  # e.g. a model that cannot take a row with NaN
        logger.warning("imputation with %s failed: %s", name, e)
        return {"imputer": name, "kind": kind, "rmse": None, "time_s": None, "note": str(e)}
    err = float(np.sqrt(np.mean((np.asarray(filled)[hidden] - truth) ** 2)))
    return {"imputer": name, "kind": kind, "rmse": err, "time_s": round(time.perf_counter() - t0, 4)}


def _params(fn) -> set:
    import inspect

    return set(inspect.signature(fn).parameters)
