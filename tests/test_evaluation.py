"""Oracle tests of the metrics in :mod:`latentzoo.evaluation`."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.manifold import trustworthiness as sk_trustworthiness

from latentzoo import PCA, PPCA
from latentzoo import evaluation as ev


class _Snap:
    """Encoder: first column; decoder: the nearest training row of the codes' first coordinate."""

    has_prior = False  # no generative prior: prior draws come from the codes' Gaussian

    def __init__(self, X):
        self.X = np.asarray(X, dtype=np.float64)

    def transform(self, X):
        return np.asarray(X, dtype=np.float64)[:, :1]

    def inverse_transform(self, Z):
        i = np.abs(self.X[:, 0][None, :] - np.asarray(Z)[:, :1]).argmin(axis=1)
        return self.X[i]


class _HalfCircle:
    """Encoder: first column (0 or 1); decoder: z -> (cos(pi z), sin(pi z))."""

    has_prior = False

    def transform(self, X):
        return np.asarray(X, dtype=np.float64)[:, :1]

    def inverse_transform(self, Z):
        z = np.asarray(Z)[:, 0]
        return np.stack([np.cos(np.pi * z), np.sin(np.pi * z)], axis=1)


def _low_rank(rng, n=300, scales=(3.0, 1.0, 0.02, 0.02, 0.02)):
    return rng.normal(size=(n, len(scales))) * np.asarray(scales)


def test_knn_accuracy_matches_brute_force_majority_vote(rng):
    Ztr = rng.normal(size=(80, 2))
    ytr = (Ztr[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)  # two classes: no ties with k=5
    Zte = rng.normal(size=(40, 2))
    yte = (Zte[:, 0] > 0).astype(int)
    d = ((Zte[:, None] - Ztr[None]) ** 2).sum(-1)
    votes = ytr[np.argsort(d, axis=1)[:, :5]]
    pred = (votes.mean(axis=1) > 0.5).astype(int)
    assert ev.knn_accuracy(Ztr, ytr, Zte, yte) == pytest.approx((pred == yte).mean())


def test_trustworthiness_identity_is_one_and_matches_sklearn(rng):
    X = rng.normal(size=(60, 5))
    assert ev.trustworthiness(X, X) == pytest.approx(1.0)
    Z = rng.normal(size=(60, 2))  # unrelated codes
    assert ev.trustworthiness(X, Z) == pytest.approx(sk_trustworthiness(X, Z, n_neighbors=5))
    assert ev.trustworthiness(X, Z) < 0.9


def test_trustworthiness_subsample_uses_max_samples_rows(rng):
    X = rng.normal(size=(200, 4))
    Z = X[:, :2]
    idx = np.sort(np.random.default_rng(3).choice(200, size=50, replace=False))
    got = ev.trustworthiness(X, Z, max_samples=50, random_state=3)
    assert got == pytest.approx(sk_trustworthiness(X[idx], Z[idx], n_neighbors=5))


def test_active_units_counts_dimensions_with_variance_above_threshold(rng):
    X = _low_rank(rng)  # variances 9, 1, 4e-4 x3
    pca = PCA(n_components=4).fit(X)
    assert ev.active_units(pca, X) == 2


def test_log_likelihood_exact_for_ppca_matches_scipy(rng):
    X = _low_rank(rng)
    m = PPCA(n_components=2).fit(X)
    C = m.W_ @ m.W_.T + m.noise_variance_ * np.eye(X.shape[1])
    expected = multivariate_normal(m.mean_, C).logpdf(X).mean()
    out = ev.log_likelihood(m, X)
    assert out["log_likelihood"] == pytest.approx(expected, rel=1e-9)
    assert out["log_likelihood_method"] == "exact" and out["elbo"] is None
    assert ev.log_likelihood(PCA(2).fit(X), X)["log_likelihood"] is None


def test_log_likelihood_importance_sampled_passes_k_and_reports_elbo():
    class FakeVAE:
        has_density, exact_density = True, False  # declares an importance-sampled density

        def score_samples(self, X, n_importance=1):
            return np.full(len(X), -float(n_importance))

        def elbo(self, X):
            return np.full(len(X), -5000.0)

    out = ev.log_likelihood(FakeVAE(), np.zeros((3, 2)), n_importance=37)
    assert out == {"log_likelihood": -37.0, "log_likelihood_method": "importance-sampled (k=37)",
                   "elbo": -5000.0}


def test_latent_sampler_matches_code_moments_without_prior(rng):
    X = _low_rank(rng, n=400)
    pca = PCA(n_components=2).fit(X)
    Z = pca.transform(X)
    draws = ev.latent_sampler(pca, X)(200_000, np.random.default_rng(1))
    np.testing.assert_allclose(draws.mean(0), Z.mean(0), atol=0.03)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), np.cov(Z, rowvar=False), rtol=0.02, atol=0.01)
    ppca = PPCA(n_components=2).fit(X)  # has a prior: N(0, I)
    draws = ev.latent_sampler(ppca, X)(200_000, np.random.default_rng(1))
    np.testing.assert_allclose(np.cov(draws, rowvar=False), np.eye(2), atol=0.02)


def test_interpolation_smoothness_is_one_for_linear_decoders(rng):
    X = _low_rank(rng)
    for m in (PCA(n_components=2).fit(X), PPCA(n_components=2).fit(X)):
        assert ev.interpolation_smoothness(m, X, steps=9) == pytest.approx(1.0, rel=1e-9)


def test_interpolation_smoothness_of_half_circle_decoder():
    # codes 0 and 1 alternate; pairs with equal codes have zero chord and are skipped
    X = np.array([[0.0], [1.0]] * 10)
    steps = 11
    polygon = 2 * (steps - 1) * np.sin(np.pi / (2 * (steps - 1)))  # inscribed polygon of the half circle
    got = ev.interpolation_smoothness(_HalfCircle(), X, steps=steps, n_pairs=200)
    assert got == pytest.approx(polygon / 2.0)


def test_evaluate_returns_every_documented_metric(digits):
    X, y = digits
    Xtr, ytr, Xte, yte = X[:300], y[:300], X[300:400], y[300:400]
    out = ev.evaluate(PPCA(n_components=2).fit(Xtr), Xte, yte, Xtr, ytr, n_prior=100, n_pairs=10)
    assert set(ev.METRICS) - set(ev.FIT_KEYS) <= set(out)
    pca = PCA(n_components=2).fit(Xtr)
    out_pca = ev.evaluate(pca, Xte, yte, Xtr, ytr, n_prior=100, n_pairs=10)
    assert out_pca["log_likelihood"] is None
    assert out_pca["reconstruction_error"] == pytest.approx(((Xte - pca.inverse_transform(pca.transform(Xte))) ** 2)
                                                            .sum(1).mean(), rel=1e-6)
    assert out_pca["knn_accuracy"] == pytest.approx(
        ev.knn_accuracy(pca.transform(Xtr), ytr, pca.transform(Xte), yte))
    # no training data: kNN by cross-validation on the held-out codes, still a probability
    alone = ev.evaluate(pca, Xte, yte, n_prior=50, n_pairs=5)
    assert 0.0 <= alone["knn_accuracy"] <= 1.0
    assert ev.evaluate(pca, Xte, n_prior=50, n_pairs=5)["knn_accuracy"] is None


def test_evaluate_counts_vae_active_units_like_the_vae(digits):
    """evaluate() counts active units from the codes it has already computed; for a VAE
    (codes = posterior means) that must be the VAE's own Burda et al. count."""
    from latentzoo import VAE

    X = digits[0]
    vae = VAE(n_components=4, hidden=(16,), max_epochs=3, random_state=0, verbose=0).fit(X[:1000])
    own, var = vae.active_units(X[1000:], return_variances=True)
    assert ev.evaluate(vae, X[1000:], n_importance=4)["active_units"] == own
    assert ev.count_active(vae.transform(X[1000:])) == int((var > 0.01).sum())
