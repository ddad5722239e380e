"""The VAE's loss and bounds on PPCA, a linear VAE whose posterior and density are known
(Tipping & Bishop, 1999): the objectives, the mask of observed entries, importance sampling."""
import numpy as np
import pytest
import torch
from scipy import stats

from latentzoo import VAE
from _planted import planted_linear_vae

FAST = dict(verbose=0, random_state=0, device="cpu")


# ---------------------------------------------------------------------- PPCA is a linear VAE
def _ppca(d=5, q=2, sigma=0.5, n=40, seed=0):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(d, q)))
    W = U * np.array([2.0, 1.2])[:q]  # orthogonal columns: the exact posterior is diagonal
    mu = rng.normal(size=d)
    X = rng.normal(size=(n, q)) @ W.T + mu + sigma * rng.normal(size=(n, d))
    return W, mu, sigma, X.astype(np.float32)




def test_linear_gaussian_vae_with_the_exact_posterior_gives_the_ppca_density():
    W, mu, sigma, X = _ppca()
    vae = planted_linear_vae(W, mu, sigma, X)
    exact = stats.multivariate_normal(mu, W @ W.T + sigma**2 * np.eye(len(mu))).logpdf(X)
    for k in (1, 10, 100):  # constant importance weights: exact for every k
        np.testing.assert_allclose(vae.score_samples(X, n_importance=k), exact, atol=1e-4)
    # and then the ELBO is tight too (its reconstruction term is a Monte Carlo mean)
    assert abs(vae.elbo(X, n_draws=5000).mean() - exact.mean()) < 0.01


@pytest.mark.parametrize("objective, term", [("iwae", "iwae"), ("elbo", "elbo")])
def test_the_loss_of_the_exact_posterior_is_the_ppca_density(objective, term):
    """With q(z|x) the exact posterior, log p(x|z) + log p(z) - log q(z|x) = log p(x) for every
    draw: the IWAE objective is exact at any k; the ELBO's is exact up to its Monte Carlo mean."""
    W, mu, sigma, X = _ppca()
    module = planted_linear_vae(W, mu, sigma, X).module_
    module.objective, module.n_particles = objective, 4000 if objective == "elbo" else 3
    exact = stats.multivariate_normal(mu, W @ W.T + sigma**2 * np.eye(len(mu))).logpdf(X)
    with torch.no_grad():
        out = module(torch.as_tensor(X), kl_weight=1.0)
    tol = 1e-4 if objective == "iwae" else 0.05
    np.testing.assert_allclose(out.terms[term].numpy(), exact, atol=tol)
    assert float(out.loss) == pytest.approx(-exact.mean(), abs=tol)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_one_training_step_runs_the_encoder_and_the_decoder_once(objective):
    W, mu, sigma, X = _ppca()
    module = planted_linear_vae(W, mu, sigma, X).module_
    module.objective, module.n_particles = objective, 3
    calls = []
    for net in (module.encoder, module.decoder):
        net.register_forward_hook(lambda m, i, o: calls.append(m))
    module(torch.as_tensor(X), kl_weight=0.5)
    assert calls == [module.encoder, module.decoder]


def test_the_loss_sums_the_likelihood_over_observed_entries_only():
    """mask: the likelihood term is log N(x_obs; W_obs z + mu_obs, sigma^2 I), scipy's value."""
    W, mu, sigma, X = _ppca()
    module = planted_linear_vae(W, mu, sigma, X).module_
    x = torch.as_tensor(X[:6])
    mask = torch.as_tensor(np.random.default_rng(3).random(x.shape) < 0.6)
    with torch.no_grad():
        inf = module.inference(x, 2)
        gen = module.generative(inf["z"])
        rec = module.loss(x, inf, gen, mask=mask).terms["rec"].numpy()
    loc = gen["px"].mean.numpy()  # (2, 6, D)
    m = mask.numpy()
    expected = -(stats.norm.logpdf(X[:6], loc, sigma) * m).sum(-1).mean(0)
    np.testing.assert_allclose(rec, expected, rtol=1e-5)


def test_scores_use_the_likelihood_resolved_at_fit():
    """The fitted module keeps its likelihood: changing the parameter afterwards changes
    neither the scores nor the data check (a Bernoulli check would reject these data)."""
    W, mu, sigma, X = _ppca()
    vae = planted_linear_vae(W, mu, sigma, X)
    before = vae.score_samples(X, n_importance=5)
    vae.set_params(likelihood="bernoulli")
    np.testing.assert_array_equal(vae.score_samples(X, n_importance=5), before)


def test_data_are_checked_against_the_likelihood_support():
    """A likelihood declares its support (a torch constraint); fit rejects data outside it."""
    from torch import distributions as D
    from torch.distributions import constraints

    from latentzoo.neural.likelihoods import Likelihood

    class LogNormal(Likelihood):
        name, support = "lognormal", constraints.positive

        def __call__(self, out):
            return D.LogNormal(out, 1.0, validate_args=False)

    X = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    VAE(likelihood=LogNormal(), hidden=(4,), max_epochs=1, **FAST).fit(X + 0.1)
    X[3, 1] = 0.0
    with pytest.raises(ValueError, match=r"needs data in \(0, inf\); got min 0"):
        VAE(likelihood=LogNormal(), hidden=(4,), max_epochs=1, **FAST).fit(X)


def test_importance_sampling_converges_to_the_ppca_density_from_a_perturbed_encoder():
    W, mu, sigma, X = _ppca()
    vae = planted_linear_vae(W, mu, sigma, X, loc_shift=0.3, scale_factor=1.6)
    exact = stats.multivariate_normal(mu, W @ W.T + sigma**2 * np.eye(len(mu))).logpdf(X)
    # the mean over 8 seeds: one seed's Monte Carlo error at k = 2000 has a standard deviation
    # of about 0.005 nats here (8 seeds: 0.0018), next to an importance-sampling bias of about -0.002
    est = {k: np.mean([vae.score_samples(X, n_importance=k, random_state=r).mean() for r in range(8)])
           for k in (10, 2000)}
    err = {k: abs(v - exact.mean()) for k, v in est.items()}
    assert err[2000] < err[10] and err[2000] < 0.01
    # the one-sample ELBO lies below log p(x) on average
    assert vae.elbo(X).mean() < exact.mean()


def test_interpolation_is_linear_for_a_linear_decoder_and_ends_at_the_posterior_means():
    W, mu, sigma, X = _ppca()
    vae = planted_linear_vae(W, mu, sigma, X)
    path = vae.interpolate(X[0], X[1], steps=5)
    ends = vae.inverse_transform(vae.transform(X[:2]))
    np.testing.assert_allclose(path[[0, -1]], ends, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(path[2], ends.mean(0), atol=1e-5)  # affine decoder: midpoint maps to midpoint
    # the posterior mean is the closed form M^-1 W^T (x - mu)
    m = np.diag(W.T @ W) + sigma**2
    np.testing.assert_allclose(vae.transform(X), ((X - mu) @ W) / m, atol=1e-5)
