"""Missing values in the neural models: the masked likelihood, MIWAE imputation against
PPCA's exact conditional (a VAE with PPCA's decoder), iterated AE reconstruction."""
import numpy as np
import pytest
import torch
from torch import distributions as D

from latentzoo import PPCA, VAE, Autoencoder, make_model
from latentzoo.neural.bounds import log_px_given_z

from _planted import planted_linear_vae

FAST = dict(verbose=0, random_state=0, device="cpu")


def _ppca_data(n=40, d=6, q=2, sigma=0.5, seed=0):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(d, q)))
    W = U * np.array([2.0, 1.2, 0.9])[:q]
    mu = rng.normal(size=d)
    X = rng.normal(size=(n, q)) @ W.T + mu + sigma * rng.normal(size=(n, d))
    return W, mu, sigma, X


def _mcar(X, rate, seed):
    X = np.array(X, dtype=np.float64)
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


def _planted_vae(W, mu, sigma, X, scale_factor=4.0):
    """A VAE whose decoder is PPCA's (x = W z + mu + sigma eps): its p(x_mis | x_obs) is
    PPCA's. The encoder is the complete-data posterior applied to the filled input,
    widened (the posterior given fewer coordinates is wider): an imperfect proposal that
    importance sampling corrects as k grows."""
    q = W.shape[1]
    vae = planted_linear_vae(W, mu, sigma, X, scale_factor=scale_factor)
    with torch.no_grad():
        vae.module_.inputs.set_fill(mu)
    ppca = PPCA(q).fit(X)
    ppca.W_, ppca.mean_, ppca.noise_variance_ = W, mu, sigma**2
    return vae, ppca


# ---------------------------------------------------------------------- the masked likelihood
def test_masked_likelihood_ignores_the_values_under_the_mask():
    torch.manual_seed(0)
    px = D.Normal(torch.randn(3, 4, 5), torch.rand(3, 4, 5) + 0.5)  # (k, B, D)
    x = torch.randn(4, 5)
    mask = torch.rand(4, 5) > 0.4
    v = torch.randn(4, 5, requires_grad=True)
    got = log_px_given_z(torch.where(mask, x, v), px, mask)
    other = log_px_given_z(torch.where(mask, x, 1e3 * torch.randn(4, 5)), px, mask)
    assert torch.equal(got, other)
    got.sum().backward()
    assert torch.count_nonzero(v.grad) == 0
    want = torch.stack([torch.stack([px.log_prob(x)[k, b][mask[b]].sum() for b in range(4)]) for k in range(3)])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_vae_loss_with_a_mask_ignores_the_values_under_it(objective):
    W, mu, sigma, X = _ppca_data()
    m = _planted_vae(W, mu, sigma, X)[0].module_
    x = torch.tensor(X[:8], dtype=torch.float32)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) > 0.3
    inf = m.inference(x, 5, mask)
    gen = m.generative(inf["z"])
    a = m.loss(x, inf, gen, 1.0, mask=mask, objective=objective)
    b = m.loss(torch.where(mask, x, 1e4 * torch.randn(x.shape)), inf, gen, 1.0, mask=mask, objective=objective)
    assert torch.equal(a.loss, b.loss) and all(torch.equal(a.terms[k], b.terms[k]) for k in a.terms)
    c = m.loss(x, inf, gen, 1.0, objective=objective)  # without the mask they count
    assert not torch.equal(a.loss, c.loss)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_vae_loss_is_the_observed_entry_bound(objective):
    """The training loss on a batch with NaN is -log p(x_obs | z) + KL / the MIWAE bound,
    recomputed from the network's parts on the observed entries alone."""
    W, mu, sigma, X = _ppca_data()
    vae, _ = _planted_vae(W, mu, sigma, X)
    m = vae.module_
    m.objective, m.n_particles = objective, 7
    x = torch.tensor(_mcar(X[:8], 0.3, 1), dtype=torch.float32)
    mask = ~torch.isnan(x)
    torch.manual_seed(3)
    loss = m(x).terms
    torch.manual_seed(3)
    filled = torch.where(mask, x, m.inputs.fill)
    qz = m.encode(filled, mask)
    z = qz.rsample((7,))
    px = m.generative(z)["px"]
    lp = torch.stack([torch.stack([px.log_prob(filled)[k, b][mask[b]].sum() for b in range(8)]) for k in range(7)])
    if objective == "elbo":
        want = lp.mean(0) - D.kl_divergence(qz, m.prior())
        torch.testing.assert_close(loss["elbo"], want, rtol=1e-5, atol=1e-4)
    else:
        log_w = lp + m.prior().log_prob(z) - qz.log_prob(z)
        want = torch.logsumexp(log_w, 0) - np.log(7)
        torch.testing.assert_close(loss["iwae"], want, rtol=1e-5, atol=1e-4)


def test_autoencoder_loss_counts_observed_entries_only():
    W, mu, sigma, X = _ppca_data()
    ae = Autoencoder(2, hidden=(8,), max_epochs=2, **FAST).fit(_mcar(X, 0.3, 0))
    m = ae.module_
    x = torch.tensor(_mcar(X[:8], 0.3, 1), dtype=torch.float32)
    mask = ~torch.isnan(x)
    filled = torch.where(mask, x, m.inputs.fill)
    mean = m.decoder(m.encoder(filled))
    want = 0.5 * ((filled - mean) ** 2 + np.log(2 * np.pi)).mul(mask).sum(-1)  # N(mean, 1) on observed
    torch.testing.assert_close(m(x).terms["rec"], want, rtol=1e-5, atol=1e-5)
    # the training fill is the column mean of the observed entries
    np.testing.assert_allclose(m.inputs.fill.numpy(), np.nanmean(_mcar(X, 0.3, 0), 0), rtol=1e-5)


# ---------------------------------------------------------------------- MIWAE imputation
def test_vae_imputation_converges_to_the_ppca_conditional_mean_as_k_grows():
    W, mu, sigma, X = _ppca_data(n=60)
    vae, ppca = _planted_vae(W, mu, sigma, X)
    T = _mcar(X, 0.4, 2)
    miss = np.isnan(T)
    exact = ppca.impute(T)[miss]
    err = {k: np.sqrt(np.mean((vae.impute(T, n_importance=k, random_state=1)[miss] - exact) ** 2))
           for k in (20, 1000, 20000)}
    assert err[20000] < err[1000] < err[20]
    assert err[20000] < 0.02  # the conditional sd of an entry is >= sigma = 0.5


def test_vae_score_samples_on_rows_with_nan_is_the_observed_log_likelihood():
    W, mu, sigma, X = _ppca_data()
    vae, ppca = _planted_vae(W, mu, sigma, X)
    T = _mcar(X, 0.4, 3)
    err = np.abs(vae.score_samples(T, n_importance=20000) - ppca.score_samples(T))  # exact log p(x_obs)
    assert err.mean() < 0.02 and err.max() < 0.1


def test_vae_resampled_imputations_have_the_ppca_conditional_moments():
    W, mu, sigma, X = _ppca_data()
    vae, ppca = _planted_vae(W, mu, sigma, X)
    x = X[:1].copy()
    x[0, [0, 2, 5]] = np.nan
    n = 4000
    got = vae.sample_imputations(x, n, random_state=0, n_importance=20000)[:, 0, [0, 2, 5]]
    want = ppca.sample_imputations(x, 40000, random_state=0)[:, 0, [0, 2, 5]]
    cov = np.cov(want.T)
    # resampling a finite particle set: Monte Carlo error above an iid sample's, so 6 se
    assert np.all(np.abs(got.mean(0) - want.mean(0)) < 6 * np.sqrt(np.diag(cov) / n))
    np.testing.assert_allclose(np.cov(got.T), cov, atol=0.1 * np.abs(cov).max())


# ---------------------------------------------------------------------- every model
MODELS_WITH_NAN = ["ppca", "ae", "dae", "cae", "vae"]


def _fit(name, X, **kw):
    extra = {"method": "em", "random_state": 0} if name == "ppca" else \
        {"hidden": (16,), "max_epochs": 20, "likelihood": "gaussian", "patience": None, **FAST}
    return make_model(name, n_components=2, **{**extra, **kw}).fit(X)


@pytest.mark.parametrize("name", MODELS_WITH_NAN)
def test_impute_never_changes_observed_entries(name):
    _, _, _, X = _ppca_data(n=80)
    Xm = _mcar(X, 0.3, 0)
    out = _fit(name, Xm).impute(Xm)
    obs = ~np.isnan(Xm)
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert np.array_equal(out[obs], Xm[obs])


@pytest.mark.parametrize("name", ["dae", "vae"])
def test_complete_and_30pct_mcar_fits_impute_alike(name):
    W, mu, sigma, X = _ppca_data(n=600, sigma=0.3)
    kw = {"max_epochs": 60, "hidden": (32,)}
    if name == "vae":
        kw.update(objective="iwae", n_particles=5, likelihood="gaussian:0.3")
    full = _fit(name, X, **kw)
    part = _fit(name, _mcar(X, 0.3, 1), **kw)
    T = _mcar(_ppca_data(n=200, sigma=0.3, seed=0)[3][::-1], 0.3, 2)  # other mask, rows reordered
    miss = np.isnan(T)
    a, b = full.impute(T)[miss], part.impute(T)[miss]
    truth = T.copy()
    truth[miss] = _ppca_data(n=200, sigma=0.3, seed=0)[3][::-1][miss]
    mean_err = np.sqrt(np.mean((truth[miss] - np.nanmean(T, 0)[np.nonzero(miss)[1]]) ** 2))
    gap = np.sqrt(np.mean((a - b) ** 2))
    assert gap < 0.35 * mean_err  # close to each other, far from what mean imputation misses


def test_autoencoder_impute_iterates_from_the_filled_input():
    W, mu, sigma, X = _ppca_data(n=200)
    ae = Autoencoder(2, hidden=(), activation="identity", max_epochs=30, **FAST).fit(X)
    T = _mcar(X[:20], 0.3, 5)
    miss = np.isnan(T)
    cur = np.where(miss, ae.module_.inputs.fill.numpy(), T)
    for _ in range(3):  # reconstruct, put the missing entries back, repeat
        cur = np.where(miss, ae.inverse_transform(ae.transform(cur)), T)
    np.testing.assert_allclose(ae.impute(T, n_iter=3), cur, rtol=1e-5, atol=1e-5)
    assert not np.allclose(ae.impute(T, n_iter=1), cur)


def test_missing_indicator_and_fill_options():
    _, _, _, X = _ppca_data(n=60)
    Xm = _mcar(X, 0.3, 0)
    ae = Autoencoder(2, hidden=(8,), max_epochs=2, missing_indicator=True, missing_fill="zero", **FAST).fit(Xm)
    first = next(mod for mod in ae.module_.encoder.modules() if isinstance(mod, torch.nn.Linear))
    assert first.in_features == 2 * X.shape[1]  # the mask is appended to the encoder input
    assert torch.count_nonzero(ae.module_.inputs.fill) == 0
    assert np.isfinite(ae.impute(Xm)).all() and np.isfinite(ae.jacobian_norm(X)).all()
    with pytest.raises(ValueError, match="missing_indicator=True needs architecture='mlp'"):
        VAE(2, architecture="conv", image_shape=(2, 3), missing_indicator=True, likelihood="gaussian",
            **FAST).fit(X)
    with pytest.raises(ValueError, match="missing_fill"):
        Autoencoder(2, missing_fill="median", **FAST).fit(X)
    with pytest.raises(ValueError, match="column 1 of X has no observed value"):
        Autoencoder(2, **FAST).fit(np.c_[X[:, :1], np.full(len(X), np.nan), X[:, 2:]])
