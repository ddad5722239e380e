"""KL divergences, log-mean-exp and importance sampling against closed forms and Monte Carlo."""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp
from torch import distributions as D

from latentzoo.neural.bounds import importance_log_likelihood, kl_or_mc, log_px_given_z, logmeanexp


def _diag_normal(mu, s):
    return D.Independent(D.Normal(torch.as_tensor(mu), torch.as_tensor(s)), 1)


def _std_normal(q):
    return D.Independent(D.Normal(torch.zeros(q, dtype=torch.float64), torch.ones(q, dtype=torch.float64)), 1)


def test_analytic_kl_is_the_closed_form_and_the_monte_carlo_mean():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(3, 4))
    s = np.exp(rng.normal(scale=0.5, size=(3, 4)))
    qz, pz = _diag_normal(mu, s), _std_normal(4)
    kl = kl_or_mc(qz, pz).numpy()
    closed = 0.5 * (mu**2 + s**2 - 1 - np.log(s**2)).sum(axis=1)
    np.testing.assert_allclose(kl, closed, rtol=1e-12)
    # Monte Carlo with samples drawn by numpy, log-densities by scipy
    L = 200_000
    z = mu + s * rng.normal(size=(L, 3, 4))
    log_ratio = (stats.norm.logpdf(z, mu, s) - stats.norm.logpdf(z)).sum(axis=2)  # (L, 3)
    se = log_ratio.std(axis=0) / math.sqrt(L)
    assert np.all(np.abs(log_ratio.mean(axis=0) - kl) < 4 * se)


def test_monte_carlo_fallback_when_no_closed_form():
    # KL(Normal || StudentT) has no registered closed form: the estimate is the MC mean
    rng = np.random.default_rng(1)
    qz = D.Independent(D.Normal(torch.tensor([[0.3, -0.2]], dtype=torch.float64), torch.tensor([[0.7, 1.2]], dtype=torch.float64)), 1)
    pz = D.Independent(D.StudentT(3.0, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1)
    with pytest.raises(ValueError, match="closed-form"):
        kl_or_mc(qz, pz)
    z = torch.as_tensor(np.array([0.3, -0.2]) + np.array([0.7, 1.2]) * rng.normal(size=(100_000, 1, 2)))
    kl = float(kl_or_mc(qz, pz, z)[0])
    # oracle: numerical integration of q log(q/p) per dimension (independent dimensions)
    from scipy.integrate import quad

    exact = sum(
        quad(lambda t, m=m, sd=sd: stats.norm.pdf(t, m, sd) * (stats.norm.logpdf(t, m, sd) - stats.t.logpdf(t, 3)),
             -30, 30)[0]
        for m, sd in [(0.3, 0.7), (-0.2, 1.2)]
    )
    lr = (stats.norm.logpdf(z.numpy(), [0.3, -0.2], [0.7, 1.2]) - stats.t.logpdf(z.numpy(), 3)).sum(-1)
    assert abs(kl - exact) < 4 * lr.std() / math.sqrt(len(lr))


def test_logmeanexp_matches_scipy_and_is_stable():
    a = torch.tensor([[1000.0, -5.0], [1001.0, -6.0], [999.0, -4.0]], dtype=torch.float64)
    expected = logsumexp(a.numpy(), axis=0) - np.log(3)
    np.testing.assert_allclose(logmeanexp(a, 0).numpy(), expected, rtol=1e-12)


def _conjugate_model(x, prior_sd=1.0, noise_sd=0.5):
    """z ~ N(0, prior_sd^2), x | z ~ N(z, noise_sd^2) in 1-D: log p(x) and the posterior are known."""

    def generative(z):
        return {"px": D.Normal(z, noise_sd), "pz": D.Independent(D.Normal(torch.zeros(1, dtype=torch.float64), prior_sd), 1)}

    post_var = 1 / (1 / prior_sd**2 + 1 / noise_sd**2)
    post_mean = post_var * x / noise_sd**2
    log_px = stats.norm.logpdf(x.numpy()[:, 0], 0, math.sqrt(prior_sd**2 + noise_sd**2))
    return generative, post_mean, math.sqrt(post_var), log_px


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_importance_sampling_is_exact_with_the_true_posterior(chunk):
    x = torch.tensor([[-1.0], [0.2], [2.5]], dtype=torch.float64)
    generative, m, s, log_px = _conjugate_model(x)
    qz = _diag_normal(m, torch.full_like(m, s))
    est = importance_log_likelihood(x, qz, generative, n_importance=50, chunk=chunk)
    np.testing.assert_allclose(est.numpy(), log_px, atol=1e-10)


def test_importance_sampling_converges_from_the_prior_proposal():
    # q = p(z): the estimate is a lower bound in expectation whose error shrinks with k
    torch.manual_seed(0)
    x = torch.tensor([[-1.0], [0.2], [2.5]], dtype=torch.float64)
    generative, _, _, log_px = _conjugate_model(x)
    qz = _diag_normal(torch.zeros(3, 1, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64))
    err = {}
    for k in (2, 20_000):
        reps = torch.stack([importance_log_likelihood(x, qz, generative, n_importance=k, chunk=1000) for _ in range(20)])
        err[k] = np.abs(reps.mean(0).numpy() - log_px).max()
    assert err[20_000] < 0.02 and err[20_000] < err[2] / 5


@pytest.mark.parametrize("spec", ["bernoulli", "gaussian", "gaussian:0.3", "laplace:2", "gaussian-learned"])
def test_closed_form_summed_log_density_equals_torch_log_prob(spec):
    # the fast path of the registered likelihoods against torch's elementwise log_prob summed,
    # with the (L, B, D) parameters of L draws against (B, D) data, values and gradients
    from latentzoo.neural.likelihoods import make_likelihood

    torch.manual_seed(0)
    lik = make_likelihood(spec)
    out = torch.randn(3, 4, 5 * lik.n_params, dtype=torch.float64, requires_grad=True)
    x = torch.rand(4, 5, dtype=torch.float64)  # grey levels in [0, 1]: valid for every family here
    px = lik(out)
    ref = px.log_prob(x).sum(-1)
    got = log_px_given_z(x, px)
    torch.testing.assert_close(got, ref)
    g, = torch.autograd.grad(got.sum(), out, retain_graph=True)
    g_ref, = torch.autograd.grad(ref.sum(), out)
    torch.testing.assert_close(g, g_ref)
    with torch.no_grad():  # scoring without a graph (the in-place route where there is one)
        torch.testing.assert_close(log_px_given_z(x, lik(out.detach())), ref.detach())
    mask = torch.rand(4, 5) < 0.5  # with a mask: the elementwise route, observed entries only
    torch.testing.assert_close(log_px_given_z(x, px, mask), torch.where(mask, px.log_prob(x), 0.0).sum(-1))


def test_float32_normal_draws_are_the_normal_quantiles_of_the_odd_grid():
    """Oracle: scipy's normal quantile at the midpoints (j + 1/2) 2^-24 of numpy's float32
    uniform grid u = j 2^-24, from the first to the last grid point: finite (u = 0 is not
    -inf), antisymmetric, within float32 accuracy of erfinv."""
    from scipy import stats

    from latentzoo.neural.bounds import _standard_normal_f32

    j = np.array([0, 1, 2**10, 2**23 - 1, 2**23, 2**24 - 1 - 2**10, 2**24 - 2, 2**24 - 1], dtype=np.float64)  # pairs j, 2^24-1-j
    got = _standard_normal_f32(torch.tensor(j * 2.0**-24, dtype=torch.float32)).double().numpy()
    ref = stats.norm.ppf((j + 0.5) * 2.0**-24)
    assert np.isfinite(got).all() and got[0] < -5.2 and got[-1] > 5.2
    np.testing.assert_allclose(got, -got[::-1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-5)


def test_per_row_normal_draws_have_the_posterior_moments_in_float32():
    """Monte Carlo oracle: the fast Normal route (float32 uniforms, erfinv) gives draws with
    the posterior's mean and standard deviation, row by row, and float32 draws of a
    float32 posterior."""
    from latentzoo.neural.bounds import per_row_sampler, row_streams

    loc, scale = torch.tensor([[0.5, -1.0, 3.0], [2.0, 0.0, -4.0]]), torch.tensor([[1.0, 0.1, 2.0], [3.0, 2.0, 0.5]])
    qz = D.Independent(D.Normal(loc, scale), 1)
    z = per_row_sampler(qz, row_streams(torch.arange(6.0).reshape(2, 3), seed=3))(20000)  # (20000, 2, 3)
    assert z.dtype == torch.float32 and z.shape == (20000, 2, 3)
    se = scale / math.sqrt(20000)
    assert ((z.double().mean(0) - loc).abs() < 5 * se).all()
    assert ((z.double().std(0) / scale - 1).abs() < 5 / math.sqrt(2 * 20000)).all()
