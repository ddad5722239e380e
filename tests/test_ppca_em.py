"""PPCA's EM on wide data (n << d), with and without missing values, against closed forms.

A random start in many dimensions is almost orthogonal to the signal, so the first plain
EM step overshoots the loadings by about ``lambda_1 / (4 q mean variance)`` and plain EM
shrinks them back at a rate ``1 - 2 sigma2 / lambda`` per iteration: it stalled (the
relative-``tol`` test stopped it) with ``trace(C)`` ~100x ``trace(S)``. These tests pin the
ML solution (Tipping & Bishop 1999), where ``trace(C) = trace(S)``.
"""
import numpy as np
import pytest

from latentzoo import PPCA
from latentzoo.linear import _em


def _wide(n=150, d=1500, q=3, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * np.array([3.0, 2.0, 1.5])[:q]
    return rng.normal(size=(n, q)) @ W.T + 1.0 + noise * rng.normal(size=(n, d))


def _mcar(X, frac=0.05, seed=5):
    Xn = X.copy()
    Xn[np.random.default_rng(seed).random(X.shape) < frac] = np.nan
    return Xn


def _trace_C(m):
    return float((m.W_ ** 2).sum() + m.noise_variance_ * m.n_features_in_)


def test_em_reaches_closed_form_on_wide_data():
    # no NaN: the ML solution is the closed form (T&B eqs. 7-8); EM with its default
    # tol and max_iter must reach it, not stop on a plateau with inflated loadings
    X = _wide()
    closed = PPCA(3).fit(X)
    em = PPCA(3, method="em", random_state=0).fit(X)
    assert em.score(X) == pytest.approx(closed.score(X), rel=1e-6)
    trace_S = float(X.var(axis=0).sum())  # 1/N sample covariance
    assert _trace_C(closed) == pytest.approx(trace_S, rel=1e-9)  # the ML identity tr C = tr S
    assert _trace_C(em) == pytest.approx(trace_S, rel=1e-3)
    np.testing.assert_allclose(em.explained_variance_, closed.explained_variance_, rtol=1e-3)
    assert em.noise_variance_ == pytest.approx(closed.noise_variance_, rel=1e-3)


def test_missing_value_em_on_complete_wide_data_reaches_closed_form():
    X = _wide()
    closed = PPCA(3).fit(X)
    d = X.shape[1]
    W0 = np.random.default_rng(1).normal(size=(d, 3)) * np.sqrt(X.var(axis=0).mean() / 3)
    W, mu, s2, h = _em.em_missing(X, W0, X.mean(axis=0), float(X.var(axis=0).mean()),
                                  max_iter=500, tol=1e-9)
    assert h[-1] == pytest.approx(closed.score(X), rel=1e-6)
    assert s2 == pytest.approx(closed.noise_variance_, rel=1e-3)
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False) ** 2 + s2, closed.explained_variance_, rtol=1e-3)


def test_em_with_missing_values_on_wide_data():
    X = _wide()
    Xn = _mcar(X)
    em = PPCA(3, method="em", random_state=0).fit(Xn)
    h = em.loglik_history_
    # EM monotonicity: the observed-data log-likelihood never decreases
    assert np.all(np.diff(h) >= -1e-12 * np.abs(h[:-1]))
    # ML of the observed entries beats the closed-form fit of the mean-imputed table,
    # both scored on the observed entries only (score_samples marginalises the NaN)
    imputed = np.where(np.isnan(Xn), np.nanmean(Xn, axis=0), Xn)
    assert em.score(Xn) > PPCA(3).fit(imputed).score(Xn)
    # total variance: trace(C) against the pairwise-complete sample covariance's trace
    # (per-feature variance over the observed entries), and against the closed-form ML
    # of the same table before the entries were deleted (5% MCAR barely moves it)
    trace_pairwise = float(np.nansum(np.nanvar(Xn, axis=0)))
    assert _trace_C(em) == pytest.approx(trace_pairwise, rel=0.2)
    closed = PPCA(3).fit(X)
    np.testing.assert_allclose(em.explained_variance_, closed.explained_variance_, rtol=0.1)
    # sample() draws from N(mu, C): Monte Carlo total variance within 5 standard errors,
    # Var(tr S_N) = 2 tr(C^2) / N for Gaussian draws
    N = 4000
    draws = em.sample(N, random_state=2)
    WtW = em.W_.T @ em.W_
    s2, d = em.noise_variance_, em.n_features_in_
    tr_C2 = float((WtW ** 2).sum() + 2 * s2 * np.trace(WtW) + d * s2 ** 2)
    assert abs(draws.var(axis=0).sum() - _trace_C(em)) < 5 * np.sqrt(2 * tr_C2 / N)
    assert draws.var(axis=0).sum() == pytest.approx(trace_pairwise, rel=0.2)


# ------------------------------------------------------------ near full rank (q close to n or d)
def _monotone(h, atol=0.0):
    """EM never decreases the likelihood (up to float64 rounding of the mean log-likelihood;
    at the noise floor that rounding is ~``sqrt(eps) d`` nats: pass ``atol``)."""
    return np.all(np.isfinite(h)) and np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]) - atol)


@pytest.mark.parametrize("q, nan", [(4, True), (5, False), (5, True), (4, False)])
def test_em_with_q_at_least_n_minus_1_is_the_degenerate_closed_form(q, nan):
    # 5 centred rows span 4 directions: with q >= n - 1 = 4 they all lie in the model's
    # subspace, the likelihood grows without bound as sigma2 -> 0, and EM used to end in a
    # raw LinAlgError (or a NaN/decreasing history). Like the closed form, it must return
    # the degenerate fit (sigma2 at its floor) and say so.
    from latentzoo.linear import DegenerateFitWarning

    X = np.random.default_rng(0).normal(size=(5, 10))
    Xf = X.copy()
    if nan:
        Xf[0, 0] = np.nan
    with pytest.warns(DegenerateFitWarning, match=f"n_components={q} >= n_samples - 1 = 4"):
        em = PPCA(q, method="em", random_state=0).fit(Xf)
    assert em.degenerate_ and _monotone(em.loglik_history_, atol=10 * _em.NOISE_FLOOR * X.shape[1])
    mean_var = float(np.nanvar(Xf, axis=0).mean())
    assert 0 < em.noise_variance_ < 1e-6 * mean_var
    if not nan:  # the closed form: C = S on the data's span (+ a negligible sigma2 I)
        with pytest.warns(DegenerateFitWarning):
            closed = PPCA(q).fit(X)
        np.testing.assert_allclose(em.get_covariance(), closed.get_covariance(), atol=1e-6 * mean_var)
        np.testing.assert_allclose(em.transform(X) @ em.W_.T, closed.transform(X) @ closed.W_.T,
                                   atol=1e-5 * np.sqrt(mean_var))


def test_em_with_q_n_minus_2_is_the_closed_form_and_monotone():
    X = np.random.default_rng(0).normal(size=(5, 10))
    closed = PPCA(3).fit(X)
    em = PPCA(3, method="em", random_state=0).fit(X)
    assert _monotone(em.loglik_history_)
    assert em.noise_variance_ == pytest.approx(closed.noise_variance_, rel=1e-4)
    assert em.score(X) == pytest.approx(closed.score(X), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 3])
def test_em_with_q_close_to_d_does_not_stop_on_a_plateau(seed):
    # n=50, d=10, q=9: one discarded direction. The log-likelihood is flat (quadratic) at its
    # maximum, so a relative change of tol=1e-6 in it stopped EM with sigma2 2% (seed 3: 8%)
    # above the closed-form ML (T&B eq. 8: the discarded eigenvalue)
    X = np.random.default_rng(seed).normal(size=(50, 10))
    closed = PPCA(9).fit(X)
    em = PPCA(9, method="em", random_state=0).fit(X)
    assert _monotone(em.loglik_history_)
    assert em.noise_variance_ == pytest.approx(closed.noise_variance_, rel=1e-3)
    np.testing.assert_allclose(em.explained_variance_, closed.explained_variance_, rtol=1e-3)


def test_em_on_data_in_a_subspace_floors_sigma2_and_stays_monotone():
    # rank-2 data, q = 2 < n - 1: the likelihood is again unbounded (sigma2 -> 0); EM used to
    # end in LinAlgError (q = 3) or a history with NaN and drops of 1e15 (with a NaN)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 10)) + 1.0
    for q in (2, 3):
        for Xf in (X, _mcar(X, 0.02)):
            em = PPCA(q, method="em", random_state=0).fit(Xf)
            assert _monotone(em.loglik_history_, atol=10 * _em.NOISE_FLOOR * X.shape[1])
            assert 0 < em.noise_variance_ < 1e-6 * float(np.nanvar(Xf, axis=0).mean())
            # the fitted subspace is the data's: reconstruction from the posterior is exact
            obs = ~np.isnan(Xf)
            np.testing.assert_allclose(em.inverse_transform(em.transform(Xf))[obs], Xf[obs], atol=1e-4)
