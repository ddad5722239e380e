"""PPCA imputation against the Gaussian closed form ``p(x_m | x_o)`` from the parameters."""
import numpy as np
import pytest

from latentzoo import PPCA


def _truth(d=6, q=2, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * 1.5
    mu = rng.normal(size=d)
    return W, mu, 0.3


def _draw(W, mu, s2, n, rng):
    return rng.normal(size=(n, W.shape[1])) @ W.T + mu + np.sqrt(s2) * rng.normal(size=(n, W.shape[0]))


def _closed_form(x, W, mu, s2):
    """Oracle by d x d algebra: mean mu_m + C_mo C_oo^-1 (x_o - mu_o), cov C_mm - C_mo C_oo^-1 C_om."""
    C = W @ W.T + s2 * np.eye(len(mu))
    m = np.isnan(x)
    o = ~m
    K = np.linalg.solve(C[np.ix_(o, o)], C[np.ix_(o, m)]).T  # C_mo C_oo^-1
    mean = mu[m] + K @ (x[o] - mu[o])
    cov = C[np.ix_(m, m)] - K @ C[np.ix_(o, m)]
    return mean, cov


def _with_params(W, mu, s2):
    m = PPCA(W.shape[1]).fit(np.random.default_rng(1).normal(size=(20, len(mu))))
    m.W_, m.mean_, m.noise_variance_ = W, mu, s2
    return m


def _mcar(X, rate, rng):
    X = X.copy()
    X[rng.random(X.shape) < rate] = np.nan
    return X


def test_conditional_mean_is_the_closed_form_of_the_parameters():
    W, mu, s2 = _truth()
    rng = np.random.default_rng(2)
    X = _mcar(_draw(W, mu, s2, 50, rng), 0.4, rng)
    X[0, :] = np.nan  # nothing observed: the marginal mean
    X[1, :] = _draw(W, mu, s2, 1, rng)  # nothing missing
    out = _with_params(W, mu, s2).impute(X)
    assert np.allclose(out[0], mu)
    for x, row in zip(X[2:], out[2:]):
        if np.isnan(x).any() and not np.isnan(x).all():
            mean, _ = _closed_form(x, W, mu, s2)
            assert np.allclose(row[np.isnan(x)], mean, atol=1e-10)


@pytest.mark.parametrize("method", ["closed", "em"])
def test_fitted_imputation_approaches_the_true_conditional_mean(method):
    W, mu, s2 = _truth()
    rng = np.random.default_rng(3)
    model = PPCA(2, method=method, random_state=0, tol=1e-9).fit(_draw(W, mu, s2, 20000, rng))
    X = _mcar(_draw(W, mu, s2, 200, rng), 0.3, rng)
    got = model.impute(X)
    want = _with_params(W, mu, s2).impute(X)
    miss = np.isnan(X)
    # estimation error of 20000 rows vs the conditional sd of the entries (>= sqrt(s2) ~ 0.55)
    assert np.sqrt(np.mean((got[miss] - want[miss]) ** 2)) < 0.05


def test_observed_entries_are_returned_unchanged():
    rng = np.random.default_rng(4)
    X = _mcar(rng.normal(size=(100, 5)), 0.3, rng)
    model = PPCA(2, method="em", random_state=0).fit(X)
    obs = ~np.isnan(X)
    out = model.impute(X)
    assert not np.isnan(out).any()
    assert np.array_equal(out[obs], X[obs])
    draws = model.sample_imputations(X, 3, random_state=0)
    assert draws.shape == (3,) + X.shape
    assert all(np.array_equal(dr[obs], X[obs]) for dr in draws)


def test_draws_have_the_conditional_mean_and_covariance_of_the_closed_form():
    W, mu, s2 = _truth()
    x = _draw(W, mu, s2, 1, np.random.default_rng(5))[0]
    x[[1, 3, 4]] = np.nan
    mean, cov = _closed_form(x, W, mu, s2)
    n = 40000
    draws = _with_params(W, mu, s2).sample_imputations(x[None], n, random_state=0)[:, 0, [1, 3, 4]]
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * se)
    emp = np.cov(draws.T)
    # sd of a sample covariance entry: sqrt((S_ij^2 + S_ii S_jj) / n)
    sd = np.sqrt((cov ** 2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(emp - cov) < 4 * sd)


def test_complete_and_30pct_mcar_fits_impute_alike():
    W, mu, s2 = _truth(d=8, q=3, seed=6)
    rng = np.random.default_rng(7)
    X = _draw(W, mu, s2, 3000, rng)
    full = PPCA(3).fit(X)
    part = PPCA(3, method="em", random_state=0, tol=1e-8).fit(_mcar(X, 0.3, rng))
    T = _mcar(_draw(W, mu, s2, 300, rng), 0.3, rng)
    miss = np.isnan(T)
    a, b = full.impute(T)[miss], part.impute(T)[miss]
    truth_gap = np.sqrt(np.mean((a - _with_params(W, mu, s2).impute(T)[miss]) ** 2))
    assert np.sqrt(np.mean((a - b) ** 2)) < max(0.1, 2 * truth_gap)


def test_impute_checks_its_input():
    model = PPCA(1).fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="3 features"):
        model.impute(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="n_imputations"):
        model.sample_imputations(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="inf"):
        model.impute(np.array([[np.inf, 0.0, 1.0]]))


def test_pca_impute_is_the_least_squares_fit_on_the_principal_subspace():
    from latentzoo import PCA

    rng = np.random.default_rng(8)
    X = _draw(*_truth(), 500, rng)
    pca = PCA(2).fit(X)
    x = X[0].copy()
    x[[1, 4]] = np.nan
    o = ~np.isnan(x)
    U = pca.components_.T  # (d, q)
    z, *_ = np.linalg.lstsq(U[o], x[o] - pca.mean_[o], rcond=None)
    out = pca.impute(x[None])[0]
    np.testing.assert_allclose(out[~o], U[~o] @ z + pca.mean_[~o], rtol=1e-5)
    assert np.array_equal(out[o], x[o])
