"""Held-out metrics shared by the ``latentzoo compare`` report and the CLI.

Every function takes a fitted latentzoo model (any rung of the ladder) and data; none
refits anything. :func:`evaluate` gathers them into one dict (the row of the metrics
table); :data:`METRICS` documents each key in one line (the report prints those lines).

Latent regularity is made measurable by two numbers:

* **sample realism** (:func:`latentzoo.realism.sample_realism`): the leave-one-out
  accuracy of a 1-nearest-neighbour classifier telling held-out data from as many
  generated points (a classifier two-sample test, Lopez-Paz & Oquab 2017): 0.5 means
  indistinguishable, 1 means every point is told apart. Models with a generative
  distribution (PPCA, VAE) give full draws ``x ~ p(x)``; the others (PCA, AE, DAE, CAE)
  decode draws from the Gaussian fitted to their training codes, ``z = m + L u`` with
  ``u ~ N(0, I)`` and ``L L^T`` the empirical code covariance. Blurry decoder means do
  not score well: they are each other's nearest neighbours. The classifier works on the
  pooled points' first 20 principal axes plus their distance from that subspace (see
  :mod:`latentzoo.realism` for why: in raw pixel space noise-like draws read 0.5).
* **interpolation smoothness** (:func:`interpolation_smoothness`): for pairs of test
  points, decode the straight latent segment between their codes at ``steps`` points
  and divide the decoded path length by the distance between its decoded endpoints.
  1 is a straight path in data space (every linear decoder scores exactly 1); larger
  values mean the decoder jumps or detours along the way.

References
----------
Venna & Kaski (2001), Neighborhood preservation in nonlinear projection methods
(trustworthiness). Burda, Grosse & Salakhutdinov (2016), Importance Weighted
Autoencoders, Sec. 5.2 (active units: ``Cov_x(E_q[z_u]) > 0.01``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .base import latent_dim
from .data.blocks import map_rows, row_blocks, take_rows

__all__ = [
    "METRICS", "LOG_LIKELIHOODS", "evaluate", "reconstruction_error", "log_likelihood",
    "knn_accuracy", "trustworthiness", "active_units", "latent_sampler",
    "interpolation_smoothness",
]

logger = logging.getLogger(__name__)

#: variance threshold of an active latent unit (Burda et al. 2016)
ACTIVE_THRESHOLD = 0.01

#: metric key -> one-line explanation (printed under the report's metrics table)
METRICS: dict[str, str] = {
    "reconstruction_error": "held-out mean over samples of ||x - decode(encode(x))||^2, summed over "
                            "features (lower is better).",
    "log_likelihood": "held-out mean log p(x) in nats per sample, every row in the report's one measure (named "
                      "in the column header): exact for PPCA; importance-sampled with k proposals from q(z|x) "
                      "for VAEs (IWAE bound, tight as k grows); on binary or discrete data densities are "
                      "fitted and scored on uniformly dequantised data (a lower bound on the log-probability of "
                      "the discrete data); n/a for PCA and the autoencoders, which have no density.",
    "bits_per_dim": "-log_likelihood / (D ln 2): the same number in bits per data dimension (lower is better).",
    "elbo": "held-out mean evidence lower bound E_q[log p(x|z)] - KL(q(z|x) || p(z)) in nats (VAEs); "
            "always <= the log-likelihood.",
    "knn_accuracy": "accuracy of a 5-nearest-neighbour classifier fitted on training codes and tested "
                    "on held-out codes (labelled rows only; higher = classes separate in the latent).",
    "knn_r2": "continuous labels (a numeric covariate with many values) instead of classes: R^2 of a "
              "5-nearest-neighbour regression of the label on the codes, training codes to held-out "
              "codes (labelled rows only; 1 = the latent predicts the covariate, 0 = no better than its mean).",
    "trustworthiness": "scikit-learn trustworthiness (5 neighbours) of the held-out codes against the "
                       "held-out data, on a subsample: 1 = latent neighbours are data neighbours.",
    "active_units": "latent dimensions whose code variance over the held-out data exceeds 0.01 "
                    "(for VAEs: variance of the posterior mean, Burda et al. 2016).",
    "sample_realism": "accuracy of a leave-one-out 1-nearest-neighbour classifier telling held-out data from "
                      "as many generated points (classifier two-sample test; 0.5 = indistinguishable, the ideal; "
                      "1 = every point told apart), in the first 20 principal axes of the pooled points plus "
                      "their distance from that subspace (in raw high-dimensional space noise-like draws read "
                      "0.5). PPCA/VAE: full draws x ~ p(x); models without a prior: decoded draws from a "
                      "Gaussian fitted to their training codes.",
    "interpolation_smoothness": "decoded path length of straight latent interpolations between test "
                                "pairs divided by the distance of the decoded endpoints (1 = straight; "
                                "higher = jumps).",
    "fit_time_s": "wall-clock seconds of fit on the training split.",
    "epochs": "training epochs run by the neural models (early stopping on a validation split keeps the "
              "best epoch's weights).",
}

#: keys of :data:`METRICS` that describe the fit rather than come from :func:`evaluate`
FIT_KEYS = ("fit_time_s", "epochs")


# ---------------------------------------------------------------------- reconstruction
def reconstruction_error(model, X, *, chunk_values: int = 2**19) -> float:
    """Mean over samples of ``||x - decode(encode(x))||^2`` summed over features.

    Computed on row chunks of about ``chunk_values`` values (a memory map is never read whole);
    missing entries (NaN) are left out of the sum.
    """
    total = 0.0
    for _, x in row_blocks(X, values=chunk_values, dtype=np.float64):
        d = x - np.asarray(model.inverse_transform(model.transform(x)), dtype=np.float64)
        total += float(np.nansum(d * d))
    return total / X.shape[0]


# ---------------------------------------------------------------------- likelihood
@dataclass(frozen=True)
class LikelihoodEstimator:
    """How to compute ``log p(x)`` for models that satisfy ``applies``."""

    name: str
    applies: Callable[[Any], bool]
    compute: Callable[..., dict]


def _importance_sampled(model, X, *, n_importance: int) -> dict:
    ll = elbo = 0.0
    for _, b in row_blocks(X):  # blocks: a memory-mapped X is never read whole
        ll += float(np.sum(model.score_samples(b, n_importance=n_importance), dtype=np.float64))
        elbo += float(np.sum(model.elbo(b), dtype=np.float64))
    n = X.shape[0]
    return {"log_likelihood": ll / n, "log_likelihood_method": f"importance-sampled (k={n_importance})",
            "elbo": elbo / n}


def _exact(model, X, *, n_importance: int) -> dict:
    ll = sum(float(np.sum(model.score_samples(b), dtype=np.float64)) for _, b in row_blocks(X))
    return {"log_likelihood": ll / X.shape[0], "log_likelihood_method": "exact", "elbo": None}


#: tried in order; the first estimator that applies computes the log-likelihood
LOG_LIKELIHOODS: list[LikelihoodEstimator] = [
    LikelihoodEstimator("importance", lambda m: m.has_density and not m.exact_density, _importance_sampled),
    LikelihoodEstimator("exact", lambda m: m.has_density and m.exact_density, _exact),
]


def log_likelihood(model, X, *, n_importance: int = 1000) -> dict:
    """Mean held-out log-likelihood (nats per sample) and how it was obtained.

    Returns
    -------
    dict with ``log_likelihood`` (float or None), ``log_likelihood_method`` ("exact",
    "importance-sampled (k=...)" or None) and ``elbo`` (float or None).
    """
    for est in LOG_LIKELIHOODS:
        if est.applies(model):
            return est.compute(model, X, n_importance=n_importance)
    return {"log_likelihood": None, "log_likelihood_method": None, "elbo": None}


# ---------------------------------------------------------------------- latent quality
def knn_accuracy(Z_train, y_train, Z_test, y_test, *, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour classifier fitted on ``Z_train`` on ``Z_test``."""
    from sklearn.neighbors import KNeighborsClassifier

    k = min(k, len(Z_train))
    clf = KNeighborsClassifier(n_neighbors=k).fit(Z_train, y_train)
    return float(clf.score(Z_test, y_test))


def knn_r2(Z_train, y_train, Z_test, y_test, *, k: int = 5) -> float:
    """R² of a k-nearest-neighbour regression fitted on ``Z_train`` on ``Z_test`` (continuous labels)."""
    from sklearn.neighbors import KNeighborsRegressor

    k = min(k, len(Z_train))
    reg = KNeighborsRegressor(n_neighbors=k).fit(Z_train, np.asarray(y_train, dtype=np.float64))
    return float(reg.score(Z_test, np.asarray(y_test, dtype=np.float64)))


def _knn(Z_train, y_train, Z_test, y_test, out: dict) -> None:
    """kNN accuracy (classes) or R² (continuous labels) on the labelled rows only."""
    from .data.labels import label_kind, labelled_mask

    y_all = y_test if y_train is None else np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    continuous = label_kind(y_all) == "continuous"
    te = labelled_mask(y_test)
    Z_test, y_test = Z_test[te], np.asarray(y_test)[te]
    if Z_train is not None:
        tr = labelled_mask(y_train)
        Z_train, y_train = Z_train[tr], np.asarray(y_train)[tr]
        if len(Z_train) and len(Z_test):
            out["knn_r2" if continuous else "knn_accuracy"] = (knn_r2 if continuous else knn_accuracy)(
                Z_train, y_train, Z_test, y_test)
        return
    if len(Z_test) < 10:
        return
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    if continuous:
        cv = KFold(5, shuffle=True, random_state=0)
        out["knn_r2"] = float(cross_val_score(KNeighborsRegressor(5), Z_test, y_test.astype(np.float64),
                                              cv=cv).mean())
        return
    cv = min(5, int(np.bincount(np.unique(y_test, return_inverse=True)[1]).min()))
    if cv >= 2:
        out["knn_accuracy"] = float(cross_val_score(KNeighborsClassifier(5), Z_test, y_test, cv=cv).mean())


def _subsample(n: int, m: int | None, random_state) -> np.ndarray:
    if m is None or n <= m:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=m, replace=False))


def trustworthiness(X, Z, *, n_neighbors: int = 5, max_samples: int | None = 500, random_state=0) -> float:
    """:func:`sklearn.manifold.trustworthiness` of codes ``Z`` for data ``X`` on a subsample.

    The statistic costs ``O(n^2)``, so at most ``max_samples`` rows (drawn without
    replacement with ``random_state``) are used. ``n_neighbors`` is lowered to what the
    subsample allows (it must be < n/2).
    """
    from sklearn.manifold import trustworthiness as _tw

    idx = _subsample(len(X), max_samples, random_state)  # rows first: a memory map is never read whole
    n = len(idx)
    k = min(n_neighbors, max(1, (n - 1) // 2 - 1))
    if n < 4:
        raise ValueError(f"trustworthiness needs at least 4 samples, got {n}")
    return float(_tw(take_rows(X, idx), take_rows(Z, idx), n_neighbors=k))


def active_units(model, X, *, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of latent dimensions whose code variance over ``X`` exceeds ``threshold``.

    The codes are ``transform(X)``: the posterior mean of PPCA and the VAE (so this is
    Burda et al.'s statistic, the VAE's own ``active_units``), the deterministic code of
    the others.
    """
    return count_active(model.transform(X), threshold=threshold)


def count_active(Z, *, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Latent dimensions of the codes ``Z`` (n, q) whose variance exceeds ``threshold``
    (unbiased, ``ddof=1``, as ``np.cov`` and the VAE's own count)."""
    Z = np.asarray(Z, dtype=np.float64)
    return int((Z.var(axis=0, ddof=1) > threshold).sum()) if len(Z) > 1 else 0


# ---------------------------------------------------------------------- regularity
def latent_sampler(model, X_train, *, codes=None) -> Callable[[int, np.random.Generator], np.ndarray]:
    """A function ``(m, rng) -> (m, q)`` latent points from the model's prior.

    Models with a generative prior (``has_prior``: PPCA, VAE) have ``p(z) = N(0, I)``.
    The others get ``N(m, C)``, the Gaussian fitted to their training codes, i.e. the
    standardised codes are drawn from ``N(0, I)``. ``codes``: ``transform(X_train)`` when
    the caller has it (else it is computed block by block).
    """
    if model.has_prior:  # the prior is N(0, I): no need to encode the training data
        q = latent_dim(model)
        return lambda m, rng: rng.standard_normal((m, q))
    Z = np.asarray(map_rows(model.transform, X_train) if codes is None else codes, dtype=np.float64)
    q = Z.shape[1]
    mean = Z.mean(axis=0)
    cov = np.atleast_2d(np.cov(Z, rowvar=False)) if len(Z) > 1 else np.zeros((q, q))
    # eigh (not cholesky) so a singular code covariance still has a square root
    w, V = np.linalg.eigh(cov)
    L = V * np.sqrt(np.clip(w, 0.0, None))
    return lambda m, rng: mean + rng.standard_normal((m, q)) @ L.T


def interpolation_smoothness(model, X, *, n_pairs: int = 50, steps: int = 16, random_state=0) -> float:
    """Mean ratio of decoded interpolation path length to decoded endpoint distance.

    For random pairs ``(a, b)`` of rows of ``X``: ``z_t = (1 - t) enc(a) + t enc(b)`` on
    ``steps`` equally spaced ``t`` in [0, 1], ``x_t = dec(z_t)``, and the ratio
    ``sum_t ||x_{t+1} - x_t|| / ||x_1 - x_0||`` (>= 1 by the triangle inequality; exactly 1
    for a linear decoder). Pairs whose decoded endpoints coincide are skipped.
    """
    if len(X) < 2:
        raise ValueError(f"interpolation_smoothness needs at least 2 samples, got {len(X)}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    rng = np.random.default_rng(random_state)
    a = rng.integers(0, len(X), size=n_pairs)
    b = (a + rng.integers(1, len(X), size=n_pairs)) % len(X)  # b != a
    Za, Zb = (np.asarray(model.transform(take_rows(X, i)), dtype=np.float64) for i in (a, b))
    t = np.linspace(0.0, 1.0, steps)
    path = (1 - t)[None, :, None] * Za[:, None, :] + t[None, :, None] * Zb[:, None, :]  # (P, S, q)
    dec = np.asarray(model.inverse_transform(path.reshape(-1, Za.shape[1])), dtype=np.float64)
    dec = dec.reshape(n_pairs, steps, -1)  # (P, S, D)
    length = np.linalg.norm(np.diff(dec, axis=1), axis=2).sum(axis=1)
    chord = np.linalg.norm(dec[:, -1] - dec[:, 0], axis=1)
    ok = chord > 1e-12 * max(1.0, float(np.abs(dec).max()))
    if not ok.any():
        return float("nan")
    return float((length[ok] / chord[ok]).mean())


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` once per process (a comparison evaluates every model on the same labels)."""
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message)


def labels_look_like_ids(y) -> bool:
    """True when no two rows share a label (at least 2 rows): an ID column, not classes,
    for which a nearest-neighbour accuracy measures nothing (every class has one member)."""
    values = np.asarray(y).tolist()
    try:
        return len(values) >= 2 and len(set(values)) == len(values)
    except TypeError:  # unhashable labels: not IDs we can tell
        return False


def _ids(y) -> bool:
    """All-distinct labels that are not measurements: strings or integers (a numeric
    covariate with fractional values, all distinct, is continuous, not IDs)."""
    y = np.asarray(y)
    fractional = y.dtype.kind == "f" and bool(np.any(y != np.round(y)))
    return not fractional and labels_look_like_ids(y)


# ---------------------------------------------------------------------- all together
def evaluate(model, X_test, y_test=None, X_train=None, y_train=None, *, n_importance: int = 1000,
             max_trust_samples: int = 500, n_prior: int = 500, n_pairs: int = 50, steps: int = 16,
             random_state=0, with_log_likelihood: bool = True) -> dict:
    """Every metric of :data:`METRICS` (except :data:`FIT_KEYS`) for a fitted model.

    Parameters
    ----------
    model : fitted latentzoo estimator
    X_test, y_test : held-out data (and labels, optional)
    X_train, y_train : training data (and labels). The kNN classifier is fitted on the
        training codes; without training data it is scored by 5-fold cross-validation on
        the held-out codes, and the code Gaussian of sample realism is fitted on ``X_test``.
    n_importance : int, default=1000
        Proposals per sample of the VAE importance-sampled log-likelihood.

    Returns
    -------
    dict
        Keys of :data:`METRICS` (``None`` where a metric does not apply) plus
        ``log_likelihood_method`` and ``n_test``.
    """
    from .data.blocks import column_means, filler
    from .data.labels import labelled_mask
    from .realism import generated_samples, reference_rows, two_sample_accuracy

    # every pass over the rows is blockwise (a memory-mapped X is never read whole); subsets are
    # taken as rows first (trustworthiness, realism, interpolations)
    out: dict[str, Any] = {"n_test": int(len(X_test))}
    Z_test, sq, missing = _codes_and_error(model, X_test)  # encoded once, used by every metric
    out["reconstruction_error"] = sq / len(X_test)
    fill_test = fill_train = filler(None)  # distances need every coordinate: NaN -> the column's observed mean
    if missing:
        fill_test = filler(column_means(X_test)[0])
        fill_train = fill_test if X_train is None else filler(column_means(X_train)[0])
    if with_log_likelihood:  # False: the caller scores it in its own measure (experiment.measure)
        out.update(log_likelihood(model, X_test, n_importance=n_importance))
        ll = out["log_likelihood"]
        out["bits_per_dim"] = None if ll is None else -ll / (X_test.shape[1] * np.log(2))
    out["knn_accuracy"] = None
    out["knn_r2"] = None
    y_all = None if y_test is None else (y_test if y_train is None else np.concatenate([y_train, y_test]))
    Z_train = None
    if y_all is not None and _ids(y_all[labelled_mask(y_all)]):
        n = int(labelled_mask(y_all).sum())
        _warn_once(f"the labels look like sample IDs (all {n} distinct, no two rows share one): kNN accuracy "
                   "skipped; pass a column of classes as the labels")
    elif y_test is not None:
        Z_train = (np.asarray(map_rows(model.transform, X_train), dtype=np.float64)
                   if X_train is not None and y_train is not None else None)
        _knn(Z_train, y_train if Z_train is not None else None, Z_test, y_test, out)
    idx = _subsample(len(X_test), max_trust_samples, random_state)
    out["trustworthiness"] = (trustworthiness(fill_test(take_rows(X_test, idx)), Z_test[idx], max_samples=None)
                              if len(X_test) >= 4 else None)
    out["active_units"] = count_active(Z_test)
    # sample realism: held-out rows against as many generated points; the code Gaussian of the models
    # without a prior is fitted to the codes of the (filled) training data, or of X_test without them
    codes = None if missing else (Z_test if X_train is None else Z_train)
    if codes is None and not model.has_prior:
        codes = map_rows(lambda b: model.transform(fill_train(b)), X_test if X_train is None else X_train)
    real = fill_test(take_rows(X_test, reference_rows(len(X_test), n_prior, random_state)))
    gen = generated_samples(model, len(real), None, random_state=random_state, codes=codes)
    out["sample_realism"] = two_sample_accuracy(real, gen, max_points=n_prior, random_state=random_state)
    out["interpolation_smoothness"] = (interpolation_smoothness(model, X_test, n_pairs=n_pairs, steps=steps,
                                                                random_state=random_state)
                                       if len(X_test) >= 2 else None)
    return out


def _codes_and_error(model, X) -> tuple[np.ndarray, float, bool]:
    """``(transform(X) float64, sum of squared reconstruction errors over the observed entries,
    whether any entry is missing)`` in one blockwise pass."""
    codes, sq, missing = [], 0.0, False
    for _, b in row_blocks(X):
        z = np.asarray(model.transform(b), dtype=np.float64)
        d = np.asarray(b, dtype=np.float64) - np.asarray(model.inverse_transform(z), dtype=np.float64)
        miss = np.isnan(b)
        missing = missing or bool(miss.any())
        sq += float((np.where(miss, 0.0, d) ** 2).sum())
        codes.append(z)
    return np.concatenate(codes), sq, missing
