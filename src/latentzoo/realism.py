"""Sample realism by a classifier two-sample test: can real data be told from generated?

:func:`two_sample_accuracy` is the leave-one-out accuracy of a 1-nearest-neighbour
classifier separating two samples of equal size (Lopez-Paz & Oquab 2017; the 1-NN
classifier of Friedman & Rafsky's test, recommended for generative models by Xu et al.
2018). When both samples come from one distribution the ``2n`` points are exchangeable,
so a point's nearest neighbour is one of its own ``n - 1`` kind with probability
``(n - 1) / (2n - 1)``: the accuracy is 0.5 up to ``O(1/n)``; it rises towards 1 as the
generated points become distinguishable. Unlike the distance of a generated point to
its nearest training example, it does not reward blur: decoder means that all sit near
the centre of the data are each other's nearest neighbours and are classified as
generated, and so are the real points around them.

**The embedding.** In the raw feature space of high-dimensional data the test is
fooled. PPCA's full draws on MNIST (784 pixels) are the decoder mean plus isotropic
noise ``sigma^2 I`` in *every* pixel, the empty border included: each draw is far from
every other point, so its nearest neighbour is a real digit (the real points lie closer
together), every generated point is "misclassified", every real point is classified
correctly, and the accuracy reads exactly 0.5, "indistinguishable", for samples that
look like noise. (Dividing each feature by its standard deviation made it worse: the
noise in near-constant pixels was magnified.) So the test runs in a fixed
low-dimensional embedding instead: the first :data:`N_COMPONENTS` principal axes of the
pooled sample (both sides together, centred, on the data's own scale), plus one more
coordinate, the distance of each point from that principal subspace (its residual
norm), so noise outside the subspace is seen as well. Distances there no longer
concentrate, and the one map is applied to both sides. The embedding is fitted on the
pooled sample, not on the real side alone: an embedding fitted on one side fits that
side's own points better (their residuals are smaller), and on a small wide table
(40 + 40 rows, 3000 features) real against real then reads 0.73 instead of 0.5;
pooling keeps the two sides exchangeable when they share a distribution.

:func:`sample_realism` draws from a fitted model and runs the test against held-out
data; :func:`generated_samples` says what is drawn: models with a generative
distribution (``sample``: PPCA, VAE) give full draws ``x ~ p(x)`` with their observation
noise; models without one (PCA, autoencoders) decode draws from the Gaussian fitted to
their training codes.

References
----------
Lopez-Paz, D. & Oquab, M. (2017), Revisiting classifier two-sample tests, ICLR.
Friedman, J. H. & Rafsky, L. C. (1979), Multivariate generalizations of the
Wald-Wolfowitz and Smirnov two-sample tests, Annals of Statistics 7(4).
Xu, Q. et al. (2018), An empirical study on evaluation metrics of generative adversarial
networks, arXiv:1806.07755 (the 1-NN two-sample accuracy).
Aggarwal, C. C., Hinneburg, A. & Keim, D. A. (2001), On the surprising behavior of
distance metrics in high dimensional space, ICDT (distance concentration).
"""
from __future__ import annotations

import inspect

import numpy as np

__all__ = ["two_sample_accuracy", "embed", "generated_samples", "sample_realism", "reference_rows",
           "MAX_POINTS", "N_COMPONENTS"]

#: points per side at most (the 1-NN search is O(n^2 k))
MAX_POINTS = 500
#: principal axes of the embedding the test runs in (plus the residual norm)
N_COMPONENTS = 20


def _rows(n_rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n_rows) if n_rows <= n else np.sort(rng.choice(n_rows, size=n, replace=False))


def _take(X, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random rows of ``X`` (all when it has no more), float64: the rows are taken
    first, so a memory-mapped ``X`` is read at those rows only."""
    return np.asarray(X if len(X) <= n else X[_rows(len(X), n, rng)], dtype=np.float64)


def reference_rows(n_rows: int, max_points: int = MAX_POINTS, random_state=0) -> np.ndarray:
    """The rows of ``n_rows`` held-out rows that :func:`sample_realism` compares with generated
    points (those :func:`two_sample_accuracy` keeps of them)."""
    return _rows(n_rows, min(n_rows, int(max_points)), np.random.default_rng(random_state))


def principal_scores(C: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lam, T)`` of a centred ``C = U S V^T``: every eigenvalue ``lam = S^2`` of ``C^T C``,
    largest first, and the coordinates ``T = C V_k = U_k S_k`` on the first ``k`` axes.

    From the eigendecomposition of the smaller of ``C^T C`` and ``C C^T``, so a wide
    1000 x 20000 sample costs one 1000 x 1000 product, not an SVD.
    """
    wide = C.shape[1] > C.shape[0]
    lam, vec = np.linalg.eigh(C @ C.T if wide else C.T @ C)  # ascending eigenvalues S^2
    lam, vec = lam[::-1], vec[:, ::-1]
    k = min(int(k), len(lam))
    T = vec[:, :k] * np.sqrt(np.maximum(lam[:k], 0.0)) if wide else C @ vec[:, :k]
    return lam, T


def embed(X: np.ndarray, *, n_components: int = N_COMPONENTS) -> np.ndarray:
    """The rows of ``X`` on their first ``n_components`` principal axes, plus their residual norm.

    ``X`` is centred at its mean ``m`` and projected on the leading principal axes ``V_k``
    of ``C = X - m`` (PCA, on the data's own scale): ``T = C V_k``; the last column is
    ``||c - V_k V_k^T c|| = sqrt(||c||^2 - ||t||^2)`` (Pythagoras), the distance from the
    principal subspace. With ``k >= rank`` the projection keeps every distance (a
    rotation) and no residual column is added. The axes come from
    :func:`principal_scores` (the smaller Gram matrix).

    Returns
    -------
    array of shape (n_samples, k + 1), or (n_samples, rank) when the axes span the data
    """
    X = np.asarray(X, dtype=np.float64)
    C = X - X.mean(axis=0)
    lam, T = principal_scores(C, int(n_components))  # T: (n, k) principal coordinates
    tol = max(lam[0], 0.0) * max(C.shape) * np.finfo(float).eps * 10
    rank = int((lam > tol).sum()) if lam[0] > 0 else 0
    k = min(int(n_components), rank)
    if k == 0:  # every row the same point
        return np.zeros((len(X), 1))
    T = T[:, :k]
    if k >= rank:
        return T
    resid = np.sqrt(np.maximum((C ** 2).sum(axis=1) - (T ** 2).sum(axis=1), 0.0))  # (n,) off the subspace
    return np.c_[T, resid]


def two_sample_accuracy(real, generated, *, max_points: int = MAX_POINTS, n_components: int = N_COMPONENTS,
                        random_state=0) -> float:
    """Leave-one-out 1-NN accuracy of telling ``real`` from ``generated`` rows (0.5 = indistinguishable).

    Both samples are cut to the same size ``n = min(len(real), len(generated), max_points)``
    (random rows), the ``2n`` points are mapped by :func:`embed` (PCA of the pooled sample
    to ``n_components`` axes plus the residual norm; see the module text for why) and
    each is classified by the label of its nearest other point (Euclidean).

    Returns
    -------
    float in [0, 1]; ``(n - 1) / (2n - 1)`` in expectation when the samples share a
    distribution, 1 when they are separated.
    """
    from sklearn.neighbors import NearestNeighbors

    if np.ndim(real) != 2 or np.ndim(generated) != 2 or np.shape(real)[1] != np.shape(generated)[1]:
        raise ValueError(f"two_sample_accuracy: expected two 2-D arrays with the same columns, got "
                         f"{np.shape(real)} and {np.shape(generated)}")
    if int(n_components) < 1:
        raise ValueError(f"two_sample_accuracy: n_components must be at least 1, got {n_components}")
    rng = np.random.default_rng(random_state)
    n = min(len(real), len(generated), int(max_points))
    if n < 2:
        raise ValueError(f"two_sample_accuracy needs at least 2 rows on each side, got {len(real)} and "
                         f"{len(generated)}")
    real, gen = _take(real, n, rng), _take(generated, n, rng)
    if not np.isfinite(gen).all():
        return 1.0  # non-finite draws are told apart from data by any classifier
    if not np.isfinite(real).all():
        raise ValueError("two_sample_accuracy: the real data have non-finite values (fill missing values first)")
    Z = embed(np.vstack([real, gen]), n_components=n_components)
    label = np.r_[np.zeros(n), np.ones(n)]
    # neighbours of the indexed points themselves exclude the point (leave-one-out)
    idx = NearestNeighbors(n_neighbors=1).fit(Z).kneighbors(return_distance=False)[:, 0]
    return float((label[idx] == label).mean())


def generated_samples(model, n: int, X_train, *, random_state=0, codes=None) -> np.ndarray:
    """``n`` points generated by ``model``: full draws ``x ~ p(x)`` where the model has a
    generative distribution, else decoded draws of the Gaussian fitted to its training codes
    (``codes``: ``transform(X_train)`` when the caller has them)."""
    from .evaluation import latent_sampler

    if model.has_prior:
        sample = model.sample
        kw = {"mean": False} if "mean" in inspect.signature(sample).parameters else {}
        return np.asarray(sample(n, random_state=random_state, **kw), dtype=np.float64)
    Z = latent_sampler(model, X_train, codes=codes)(n, np.random.default_rng(random_state))
    return np.asarray(model.inverse_transform(Z), dtype=np.float64)


def sample_realism(model, X_test, X_train, *, max_points: int = MAX_POINTS, random_state=0) -> float:
    """:func:`two_sample_accuracy` of held-out data ``X_test`` against as many generated points."""
    real = _take(X_test, min(len(X_test), int(max_points)), np.random.default_rng(random_state))
    gen = generated_samples(model, len(real), X_train, random_state=random_state)
    return two_sample_accuracy(real, gen, max_points=max_points, random_state=random_state)
