"""PPCA against scipy's Gaussian density, scikit-learn's PCA, closed formulas and Monte Carlo."""
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SkPCA

from latentzoo import PCA, PPCA


def _ppca_data(n=300, d=8, q=2, s2=0.3, seed=0):
    """Data drawn from a PPCA model; returns X and the true W."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * np.linspace(3, 1.5, q)
    X = rng.normal(size=(n, q)) @ W.T + 2.0 + np.sqrt(s2) * rng.normal(size=(n, d))
    return X, W


def _with_nan(X, frac, seed=1):
    rng = np.random.default_rng(seed)
    Xn = X.copy()
    Xn[rng.random(X.shape) < frac] = np.nan
    return Xn


def _oracle_logpdf(m, X):
    """scipy's log-density of the observed part of each row under N(mu, W W^T + s2 I)."""
    C = m.W_ @ m.W_.T + m.noise_variance_ * np.eye(X.shape[1])
    out = np.empty(len(X))
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        out[i] = multivariate_normal(m.mean_[o], C[np.ix_(o, o)]).logpdf(x[o]) if o.any() else 0.0
    return out


@pytest.mark.parametrize("method", ["closed", "em"])
def test_score_samples_equals_scipy_logpdf(method):
    X, _ = _ppca_data()
    m = PPCA(2, method=method, random_state=0).fit(X)
    np.testing.assert_allclose(m.score_samples(X), _oracle_logpdf(m, X), rtol=1e-10)
    assert m.score(X) == pytest.approx(_oracle_logpdf(m, X).mean(), rel=1e-10)


def test_score_samples_on_rows_with_nan_is_the_observed_marginal():
    X, _ = _ppca_data()
    m = PPCA(2).fit(X)
    Xn = _with_nan(X[:60], 0.4)
    Xn[0] = np.nan  # nothing observed: log-density of the empty vector is 0
    Xn[1, 1:] = np.nan  # fewer observed coordinates (1) than latent dimensions (2)
    np.testing.assert_allclose(m.score_samples(Xn), _oracle_logpdf(m, Xn), rtol=1e-10, atol=1e-12)


def test_matches_sklearn_score_samples_after_variance_rescaling():
    # sklearn's PCA is PPCA with the 1/(n-1) covariance, i.e. N(mu, c^2 C), c^2 = n/(n-1)
    X, _ = _ppca_data()
    n, d = X.shape
    c = np.sqrt(n / (n - 1))
    m = PPCA(3).fit(X)
    sk = SkPCA(3, svd_solver="full").fit(X)
    np.testing.assert_allclose(m.score_samples(m.mean_ + (X - m.mean_) / c) - d * np.log(c),
                               sk.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(m.noise_variance_ * c**2, sk.noise_variance_, rtol=1e-10)
    np.testing.assert_allclose(m.get_covariance() * c**2, sk.get_covariance(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["closed", "em"])
def test_subspace_equals_sklearn_pca(method):
    X, _ = _ppca_data()
    m = PPCA(2, method=method, tol=1e-12, max_iter=5000, random_state=0).fit(X)
    sk = SkPCA(2, svd_solver="full").fit(X)
    assert np.max(subspace_angles(m.W_, sk.components_.T)) < 1e-6
    assert np.max(subspace_angles(m.components_.T, sk.components_.T)) < 1e-6


@pytest.mark.parametrize("n,d", [(300, 8), (6, 8)])  # n < d: Gram route, zero eigenvalues
def test_closed_form_ml_properties(n, d):
    X, _ = _ppca_data(n=n, d=d)
    n, d = X.shape
    q = 3
    m = PPCA(q).fit(X)
    lam = np.linalg.eigvalsh(np.cov(X.T, bias=True))[::-1]  # 1/N eigenvalues, descending
    assert m.noise_variance_ == pytest.approx(lam[q:].mean(), rel=1e-10)
    np.testing.assert_allclose(m.explained_variance_, lam[:q], rtol=1e-10)
    # W = U_q (Lambda_q - s2 I)^1/2: orthogonal columns with squared norms lambda_k - s2
    np.testing.assert_allclose(m.W_.T @ m.W_, np.diag(lam[:q] - lam[q:].mean()), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m.mean_, X.mean(axis=0), rtol=1e-12)


def test_posterior_equals_schur_complement_of_joint_gaussian():
    X, _ = _ppca_data()
    m = PPCA(2).fit(X)
    W, mu, d = m.W_, m.mean_, X.shape[1]
    C = W @ W.T + m.noise_variance_ * np.eye(d)
    Xq = _with_nan(X[:40], 0.3)
    post = m.posterior(Xq)
    assert post.batch_shape == (40,) and post.event_shape == (2,)
    means, covs = post.mean.numpy(), post.covariance_matrix.numpy()
    for i, x in enumerate(Xq):
        o = ~np.isnan(x)
        # joint [[I, W_o^T], [W_o, C_oo]]: z | x_o ~ N(W_o^T C_oo^-1 (x_o - mu_o), I - W_o^T C_oo^-1 W_o)
        K = np.linalg.solve(C[np.ix_(o, o)], W[o]).T
        np.testing.assert_allclose(means[i], K @ (x[o] - mu[o]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(covs[i], np.eye(2) - K @ W[o], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.transform(Xq), means, rtol=1e-12)


def test_precision_is_inverse_covariance():
    X, _ = _ppca_data()
    m = PPCA(3).fit(X)
    np.testing.assert_allclose(m.get_precision() @ m.get_covariance(), np.eye(X.shape[1]), atol=1e-10)


def test_sample_moments_match_model_by_monte_carlo():
    X, _ = _ppca_data(d=5)
    m = PPCA(2).fit(X)
    N = 100_000
    S = m.sample(N, random_state=0)
    C = m.get_covariance()
    se_mean = np.sqrt(np.diag(C) / N)
    assert np.all(np.abs(S.mean(axis=0) - m.mean_) < 5 * se_mean)
    se_cov = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / N)
    assert np.all(np.abs(np.cov(S.T) - C) < 5 * se_cov)
    np.testing.assert_array_equal(m.sample(3, random_state=7), m.sample(3, random_state=7))


def test_em_reaches_closed_form_and_never_decreases():
    X, _ = _ppca_data()
    closed = PPCA(2).fit(X)
    em = PPCA(2, method="em", tol=1e-12, max_iter=5000, random_state=3).fit(X)
    h = em.loglik_history_
    assert em.n_iter_ == len(h) - 1 and em.n_iter_ >= 1
    assert np.all(np.diff(h) >= -1e-12 * np.abs(h[:-1]))
    assert h[-1] == pytest.approx(closed.score(X), rel=1e-6)
    assert em.score(X) == pytest.approx(h[-1], rel=1e-10)  # history ends at the fitted model
    assert em.noise_variance_ == pytest.approx(closed.noise_variance_, rel=1e-4)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_em_is_deterministic_given_random_state():
    X, _ = _ppca_data()
    a = PPCA(2, method="em", random_state=5, max_iter=20, tol=0).fit(X)
    b = PPCA(2, method="em", random_state=5, max_iter=20, tol=0).fit(X)
    np.testing.assert_array_equal(a.W_, b.W_)


def test_em_with_missing_values_beats_mean_imputation():
    X, W_true = _ppca_data(n=500, d=20, q=3, s2=0.5, seed=2)
    Xn = _with_nan(X, 0.2, seed=3)
    em = PPCA(3, method="em", tol=1e-9, max_iter=2000, random_state=0).fit(Xn)
    h = em.loglik_history_
    assert np.all(np.diff(h) >= -1e-12 * np.abs(h[:-1]))
    # the recorded log-likelihood is that of the observed entries (oracle: scipy)
    assert h[-1] == pytest.approx(_oracle_logpdf(em, Xn).mean(), rel=1e-10)
    imputed = np.where(np.isnan(Xn), np.nanmean(Xn, axis=0), Xn)
    pca = PCA(3).fit(imputed)
    angle_em = np.max(subspace_angles(em.W_, W_true))
    angle_pca = np.max(subspace_angles(pca.components_.T, W_true))
    assert angle_em < 0.5 * angle_pca, (angle_em, angle_pca)
    # transform of rows with NaN: posterior mean from the observed coordinates
    assert np.isfinite(em.transform(Xn)).all()


def test_missing_value_em_on_complete_data_reaches_closed_form():
    # the missing-value EM (per-row E-step, joint (w_j, mu_j) M-step) run on data without
    # NaN must reach the closed-form maximum likelihood too
    from latentzoo.linear import _em

    X, _ = _ppca_data(n=200, d=6)
    closed = PPCA(2).fit(X)
    W0 = np.random.default_rng(0).normal(size=(6, 2))
    W, mu, s2, h = _em.em_missing(X, W0, X.mean(axis=0) + 1.0, 1.0, max_iter=5000, tol=1e-12)
    assert h[-1] == pytest.approx(closed.score(X), rel=1e-6)
    np.testing.assert_allclose(mu, closed.mean_, rtol=1e-4)
    assert s2 == pytest.approx(closed.noise_variance_, rel=1e-4)


@pytest.mark.parametrize("q", [0, 2.5, "2", None])
def test_invalid_n_components(q):
    with pytest.raises(ValueError, match="n_components"):
        PPCA(q).fit(_ppca_data()[0])


@pytest.mark.parametrize("method", ["closed", "em"])
def test_n_components_must_be_less_than_n_features(method):
    X, _ = _ppca_data(d=5)
    with pytest.raises(ValueError, match="n_components=5.*< n_features = 5.*noise variance"):
        PPCA(5, method=method).fit(X)


def test_nan_with_closed_form_asks_for_em():
    Xn = _with_nan(_ppca_data()[0], 0.1)
    with pytest.raises(ValueError, match="NaN.*method='em'"):
        PPCA(2).fit(Xn)


def test_other_input_errors():
    X, _ = _ppca_data()
    m = PPCA(2).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.transform(X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        m.score_samples(X[:, :-1])
    with pytest.raises(ValueError, match="method"):
        PPCA(2, method="svd").fit(X)
    Xn = X.copy()
    Xn[:, 3] = np.nan
    with pytest.raises(ValueError, match="column 3"):
        PPCA(2, method="em").fit(Xn)


def test_float32_closed_form_matches_float64():
    X, _ = _ppca_data(n=2000)
    m32 = PPCA(2).fit(X.astype(np.float32))
    m64 = PPCA(2).fit(X.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(m32.score_samples(X), m64.score_samples(X), rtol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_em_save_load_round_trip(tmp_path):
    import latentzoo

    X, _ = _ppca_data()
    m = PPCA(2, method="em", random_state=0, max_iter=30).fit(_with_nan(X, 0.1))
    m.save(tmp_path / "ppca.safetensors")
    back = latentzoo.load(tmp_path / "ppca.safetensors")
    np.testing.assert_array_equal(back.loglik_history_, m.loglik_history_)
    assert back.n_iter_ == m.n_iter_
    np.testing.assert_array_equal(back.score_samples(X), m.score_samples(X))


def _low_noise_data(n=3000, d=20, q=3, noise=1e-4, seed=3):
    """Data almost on a q-dimensional subspace: the residual off it is ~1e-8 of ||x - mu||^2."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * 3.0
    return rng.normal(size=(n, q)) @ W.T + 1.0 + noise * rng.normal(size=(n, d))


@pytest.mark.parametrize("make", [lambda: _ppca_data(n=2000)[0], _low_noise_data], ids=["ppca", "low-noise"])
def test_float32_score_samples_against_float64_oracle(make):
    # float32 in is evaluated in float32 blocks; where the residual off the subspace is
    # tiny (low noise) the squared-norm subtraction cancels and those rows must be redone
    # in float64. Oracle: scipy's float64 log-density of the same float32 values.
    X32 = make().astype(np.float32)
    m = PPCA(3).fit(X32)
    ours = m.score_samples(X32)
    assert ours.dtype == np.float64
    ref = _oracle_logpdf(m, X32.astype(np.float64)[:300])
    np.testing.assert_allclose(ours[:300], ref, rtol=2e-6, atol=1e-3)
    assert m.score(X32) == pytest.approx(m.score(X32.astype(np.float64)), rel=1e-6)


def test_float32_score_samples_nan_rows_and_inf():
    X, _ = _ppca_data()
    m = PPCA(2).fit(X)
    Xn = _with_nan(X[:60], 0.3).astype(np.float32)
    np.testing.assert_allclose(m.score_samples(Xn), _oracle_logpdf(m, Xn.astype(np.float64)),
                               rtol=1e-5, atol=1e-4)
    Xi = X[:10].astype(np.float32)
    Xi[3] = np.nan
    Xi[7, 4] = np.inf
    with pytest.raises(ValueError, match="inf first at row 7, column 4"):
        m.score_samples(Xi)


def test_fit_finite_check_folded_into_the_mean():
    # the column mean is the finite check: NaN and inf still name the entry, and finite
    # float32 data whose column sums overflow float32 still fit (in float64)
    X, _ = _ppca_data(n=3000)
    for bad, kind in ((np.nan, "NaN"), (-np.inf, "inf")):
        Xb = X.astype(np.float32)
        Xb[2500, 5] = bad
        with pytest.raises(ValueError, match=f"{kind} first at row 2500, column 5"):
            PPCA(2).fit(Xb)
        with pytest.raises(ValueError, match=f"{kind} first at row 2500, column 5"):
            PCA(2).fit(Xb)
    big = (X * 1e36).astype(np.float32)  # finite; a 2048-row column sum exceeds float32's 3.4e38
    with np.errstate(over="ignore"):
        assert np.isfinite(big).all() and not np.isfinite(big[:2048].sum(axis=0)).all()
    ref = PCA(2).fit(big.astype(np.float64))
    np.testing.assert_allclose(PCA(2).fit(big).explained_variance_, ref.explained_variance_, rtol=1e-5)
