"""VAE / beta-VAE on data: bound ordering, beta, warm-up, IWAE, posterior families, persistence
(the loss on PPCA, a linear VAE with a known posterior: test_vae_loss.py)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import latentzoo
from latentzoo import VAE, make_model
from latentzoo.neural.likelihoods import Gaussian, GaussianLearned, Laplace, make_likelihood

FAST = dict(verbose=0, random_state=0, device="cpu")


def _untimed(history):
    """The history without wall-clock epoch times (the only part a replay cannot repeat)."""
    return {k: v for k, v in history.items() if k != "epoch_time"}


@pytest.fixture(scope="module")
def digits_split(digits):
    X, _ = digits
    perm = np.random.default_rng(0).permutation(len(X))
    return X[perm[:600]], X[perm[600:900]]


@pytest.fixture(scope="module")
def digits_vae(digits_split):
    Xtr, _ = digits_split
    return VAE(n_components=4, hidden=(32,), activation="tanh", max_epochs=25, batch_size=32, lr=3e-3,
               patience=None, **FAST).fit(Xtr)


# ---------------------------------------------------------------------- bounds on a trained model
def test_elbo_below_iwae_below_log_likelihood_on_digits(digits_vae, digits_split):
    _, Xte = digits_split
    elbo = digits_vae.elbo(Xte, n_draws=200, random_state=1)
    iw5 = digits_vae.score_samples(Xte, n_importance=5, random_state=2)
    iw50 = digits_vae.score_samples(Xte, n_importance=50, random_state=3)
    logp = digits_vae.score_samples(Xte, n_importance=1000, random_state=4)
    for lo, hi in [(elbo, iw5), (iw5, iw50), (iw50, logp)]:
        diff = hi - lo  # independent draws: the paired differences carry the Monte Carlo noise
        assert diff.mean() > -3 * diff.std() / math.sqrt(len(diff))
    assert (logp - elbo).mean() > 5 * (logp - elbo).std() / math.sqrt(len(Xte))  # a real gap
    # the 1-sample importance estimate is an unbiased estimate of the analytic-KL ELBO
    iw1 = digits_vae.score_samples(Xte, n_importance=1, random_state=5)
    diff = iw1 - digits_vae.elbo(Xte, random_state=6)
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff))


def test_active_units_and_posterior_match_numpy(digits_vae, digits_split):
    Xtr, _ = digits_split
    Z = digits_vae.transform(Xtr)
    var = np.cov(Z.T.astype(np.float64)).diagonal()
    count, v = digits_vae.active_units(Xtr, return_variances=True)
    np.testing.assert_allclose(v, var, rtol=1e-6)
    assert count == int((var > 0.01).sum())
    assert digits_vae.active_units(Xtr, threshold=np.inf) == 0
    qz = digits_vae.posterior(Xtr)
    assert qz.batch_shape == (len(Xtr),) and qz.mean.device.type == "cpu"
    np.testing.assert_array_equal(qz.mean.numpy(), Z)
    assert (qz.stddev > 0).all()


def test_sample_is_seeded_and_in_range(digits_vae):
    a = digits_vae.sample(7, random_state=3)
    np.testing.assert_array_equal(a, digits_vae.sample(7, random_state=3))
    assert a.shape == (7, 64) and a.min() >= 0 and a.max() <= 1  # Bernoulli means
    draws = digits_vae.sample(7, random_state=3, mean=False)
    assert set(np.unique(draws)) <= {0.0, 1.0}


# ---------------------------------------------------------------------- training variants
def test_beta_above_one_trades_reconstruction_for_kl(digits_split):
    Xtr, _ = digits_split
    kw = dict(n_components=4, hidden=(32,), max_epochs=10, batch_size=32, lr=3e-3, patience=None, **FAST)
    h1 = VAE(beta=1.0, **kw).fit(Xtr).history_
    h4 = make_model("beta-vae", **kw).fit(Xtr).history_
    assert h4["train_kl"][-1] < h1["train_kl"][-1]
    assert h4["train_rec"][-1] > h1["train_rec"][-1]


def test_learned_variance_beats_unit_variance_on_held_out_digits(digits_split):
    Xtr, Xte = digits_split
    kw = dict(n_components=4, hidden=(32,), max_epochs=10, batch_size=32, lr=3e-3, patience=None, **FAST)
    learned = VAE(likelihood="gaussian-learned", **kw).fit(Xtr)
    unit = VAE(likelihood="gaussian", **kw).fit(Xtr)
    assert all(np.isfinite(v).all() for v in learned.history_.values())
    assert learned.score_samples(Xte, n_importance=50).mean() > unit.score_samples(Xte, n_importance=50).mean()


def test_kl_warmup_ramps_the_kl_weight_of_the_objective(digits_split):
    Xtr, _ = digits_split
    h = VAE(n_components=2, hidden=(8,), beta=2.0, kl_warmup=4, max_epochs=6, patience=None, **FAST).fit(Xtr[:100]).history_
    np.testing.assert_allclose(h["kl_weight"], [0.5, 1.0, 1.5, 2.0, 2.0, 2.0])  # beta * min(1, (t + 1) / 4)
    # the weight reaches the objective: the loss of each epoch is rec + beta_t * kl on the same draws
    for split in ("train", "val"):
        np.testing.assert_allclose(h[f"{split}_loss"],
                                   np.add(h[f"{split}_rec"], np.multiply(h["kl_weight"], h[f"{split}_kl"])), rtol=1e-5)


def test_iwae_with_one_sample_is_the_elbo_objective(digits_vae, digits_split):
    import copy

    Xtr, _ = digits_split
    elbo_mod = copy.deepcopy(digits_vae.module_)
    iwae_mod = copy.deepcopy(digits_vae.module_)
    iwae_mod.objective, iwae_mod.n_particles = "iwae", 1
    x = torch.as_tensor(Xtr[:50])
    torch.manual_seed(7)
    out_e = elbo_mod(x)
    torch.manual_seed(7)
    out_i = iwae_mod(x)
    torch.testing.assert_close(out_i.terms["rec"], out_e.terms["rec"])  # the same draws
    # the objectives differ only in KL estimator (closed form vs one sample): equal in expectation
    xr = torch.as_tensor(np.repeat(Xtr[:1], 20000, axis=0))
    with torch.no_grad():
        e = elbo_mod(xr).terms["elbo"].numpy()
        i = iwae_mod(xr).terms["iwae"].numpy()
    diff = i - e  # independent draws of the same x
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff))


def test_iwae_objective_trains_and_logs_its_bound(digits_split):
    Xtr, _ = digits_split
    h = VAE(n_components=2, hidden=(8,), objective="iwae", n_particles=5, max_epochs=2, **FAST).fit(Xtr[:200]).history_
    assert all(b >= e for b, e in zip(h["val_iwae"], h["val_elbo"]))  # IWAE_5 >= ELBO on the same draws


# ---------------------------------------------------------------------- errors, persistence
@pytest.mark.parametrize("param, value", [
    ("beta", 0.0), ("beta", -1.0), ("n_particles", 0), ("objective", "wake-sleep"),
    pytest.param("n_samples", 0, marks=pytest.mark.filterwarnings("ignore:VAE.n_samples=:DeprecationWarning")),
    ("likelihood", "poisson"),
    ("kl_warmup", -1), ("hidden", (0,)),
])
def test_bad_parameters_name_the_parameter(param, value):
    X = np.random.default_rng(0).random((20, 3))
    with pytest.raises(ValueError, match=param):
        VAE(**{param: value}, **FAST).fit(X)


def test_the_old_n_samples_keywords_work_with_a_deprecation_warning(digits_split):
    """n_samples meant three things; training draws are now n_particles, ELBO draws n_draws
    (sample(n_samples) keeps scikit-learn's meaning: rows). The old keywords give the same results."""
    Xtr, _ = digits_split
    kw = dict(n_components=2, hidden=(8,), objective="iwae", max_epochs=2, **FAST)
    new = VAE(n_particles=3, **kw).fit(Xtr[:100])
    with pytest.warns(DeprecationWarning, match="n_particles"):
        old = VAE(n_samples=3, **kw).fit(Xtr[:100])
    assert old.module_.n_particles == 3 and _untimed(old.history_) == _untimed(new.history_)
    with pytest.warns(DeprecationWarning, match="n_draws"):
        np.testing.assert_array_equal(new.elbo(Xtr[:20], n_samples=4), new.elbo(Xtr[:20], n_draws=4))


def test_bernoulli_needs_unit_interval_data():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"likelihood='bernoulli' needs data in \[0, 1\]; got min"):
        VAE(**FAST).fit(X)
    VAE(likelihood="gaussian", max_epochs=1, hidden=(4,), **FAST).fit(X)  # fine with a Gaussian


def test_method_arguments_are_checked(digits_vae, digits_split):
    Xtr, _ = digits_split
    with pytest.raises(ValueError, match="n_importance"):
        digits_vae.score_samples(Xtr[:3], n_importance=0)
    with pytest.raises(ValueError, match="n_draws"):
        digits_vae.elbo(Xtr[:3], n_draws=0)


def test_score_samples_is_deterministic_and_independent_of_chunking(digits_vae, digits_split):
    _, Xte = digits_split
    a = digits_vae.score_samples(Xte[:40], n_importance=200, random_state=9)
    np.testing.assert_array_equal(a, digits_vae.score_samples(Xte[:40], n_importance=200, random_state=9))
    b = digits_vae.score_samples(Xte[:40], n_importance=200, batch_size=7, random_state=9)  # other draws
    assert abs(a.mean() - b.mean()) < 0.5


@pytest.mark.parametrize("cls, lik, spec", [
    (VAE, Gaussian(0.1), "gaussian:0.1"), (latentzoo.Autoencoder, Laplace(0.5), "laplace:0.5"),
    (VAE, GaussianLearned(0.01), "gaussian-learned:0.01"),
])
def test_a_likelihood_instance_is_saved_as_its_spec_and_loads_back_equal(cls, lik, spec, tmp_path):
    X = np.random.default_rng(0).random((40, 5)).astype(np.float32)
    est = cls(likelihood=lik, hidden=(4,), max_epochs=1, **FAST).fit(X)
    est.save(tmp_path / "m.safetensors")
    assert est.likelihood is lik  # saving leaves the estimator's own parameter alone
    back = latentzoo.load(tmp_path / "m.safetensors")
    assert back.likelihood == spec and make_likelihood(back.likelihood) == lik
    assert back.module_.likelihood == est.module_.likelihood
    np.testing.assert_array_equal(back.inverse_transform(back.transform(X)), est.inverse_transform(est.transform(X)))


def test_save_load_round_trip(digits_vae, digits_split, tmp_path):
    _, Xte = digits_split
    digits_vae.save(tmp_path / "vae.safetensors")
    back = latentzoo.load(tmp_path / "vae.safetensors")
    assert back.get_params() == digits_vae.get_params()
    np.testing.assert_array_equal(back.score_samples(Xte[:20], n_importance=30), digits_vae.score_samples(Xte[:20], n_importance=30))
    assert back.history_ == digits_vae.history_


def test_resume_equals_an_uninterrupted_fit(digits_split, tmp_path):
    Xtr, _ = digits_split
    kw = dict(n_components=2, hidden=(8,), n_particles=2, kl_warmup=3, patience=None, batch_size=64, **FAST)
    full = VAE(max_epochs=5, checkpoint_dir=str(tmp_path / "full"), **kw).fit(Xtr[:200])
    VAE(max_epochs=2, checkpoint_dir=str(tmp_path / "part"), **kw).fit(Xtr[:200])
    res = VAE(max_epochs=5, checkpoint_dir=str(tmp_path / "part"), **kw).fit(Xtr[:200], resume=True)
    for p, r in zip(full.module_.parameters(), res.module_.parameters()):
        assert torch.equal(p, r)
    assert _untimed(full.history_) == _untimed(res.history_)


# ---------------------------------------------------------------------- posterior families
def test_laplace_posterior_kl_is_the_closed_form():
    """torch registers KL(Laplace || Normal) in closed form, so the VAE's KL is exact:
    KL = -H(Laplace(m, b)) - E_q log N(z; 0, 1) = -1 - log(2b) + log(2 pi)/2 + (m^2 + 2 b^2)/2,
    the same with or without draws; and a Monte Carlo mean of numpy draws agrees with it."""
    from torch import distributions as D

    from latentzoo.neural.bounds import kl_or_mc
    from latentzoo.neural.vae_module import POSTERIORS

    torch.manual_seed(0)
    out = torch.randn(5, 6, dtype=torch.float64)  # 5 rows, q = 3: location then raw scale
    qz = POSTERIORS["laplace"](out)
    m, b = qz.base_dist.loc, qz.base_dist.scale
    exact = (-1 - torch.log(2 * b) + 0.5 * math.log(2 * math.pi) + 0.5 * (m**2 + 2 * b**2)).sum(-1)
    pz = D.Independent(D.Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)
    torch.testing.assert_close(kl_or_mc(qz, pz), exact)  # no draws needed: a closed form
    rng = np.random.default_rng(1)
    z = rng.laplace(m.numpy(), b.numpy(), size=(200_000, 5, 3))
    log_ratio = (stats.laplace.logpdf(z, m.numpy(), b.numpy()) - stats.norm.logpdf(z)).sum(-1)
    se = log_ratio.std(0) / math.sqrt(len(z))
    assert np.all(np.abs(log_ratio.mean(0) - exact.numpy()) < 5 * se)


class StudentT3(torch.distributions.StudentT):
    """A location-scale Student t with 3 degrees of freedom: no closed-form KL against N(0, I)."""

    def __init__(self, loc, scale, validate_args=None):
        super().__init__(3.0, loc, scale, validate_args=validate_args)


@pytest.fixture
def student_t_posterior():
    from latentzoo.neural.vae_module import POSTERIORS, register_posterior

    register_posterior("student-t3", StudentT3)
    yield "student-t3"
    POSTERIORS.pop("student-t3")


def test_a_family_without_closed_form_kl_gets_the_monte_carlo_kl(student_t_posterior, digits_split):
    """KL(t_3(m, s) || N(0, 1)) has no registered closed form: the objective's KL is the Monte
    Carlo mean at the draws, which agrees with numerical integration of q log(q / p)."""
    from scipy.integrate import quad
    from torch import distributions as D

    from latentzoo.neural.objectives import Bound
    from latentzoo.neural.vae_module import POSTERIORS

    qz = POSTERIORS[student_t_posterior](torch.tensor([[0.4, -0.3, 0.2, -0.5]], dtype=torch.float64))
    pz = D.Independent(D.Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1)
    with pytest.raises(NotImplementedError):
        D.kl_divergence(qz, pz)
    torch.manual_seed(0)
    z = qz.rsample((200_000,))  # (L, 1, 2)
    kl = float(Bound(torch.zeros(len(z), 1, dtype=torch.float64), qz, pz, z).kl[0])
    m, s = qz.base_dist.loc[0].numpy(), qz.base_dist.scale[0].numpy()
    exact = sum(quad(lambda t, mi=mi, si=si: stats.t.pdf(t, 3, mi, si)
                     * (stats.t.logpdf(t, 3, mi, si) - stats.norm.logpdf(t)), -np.inf, np.inf)[0]
                for mi, si in zip(m, s))
    se = float((qz.log_prob(z) - pz.log_prob(z)).std()) / math.sqrt(len(z))
    assert abs(kl - exact) < 4 * se
    # and a VAE trains with it (posterior_family names the registered family)
    Xtr, _ = digits_split
    vae = VAE(n_components=2, hidden=(8,), max_epochs=2, posterior_family=student_t_posterior, **FAST).fit(Xtr[:100])
    assert isinstance(vae.posterior(Xtr[:3]).base_dist, StudentT3) and np.isfinite(vae.history_["train_kl"]).all()


def test_laplace_posterior_vae_trains_and_encodes_with_its_family(digits_split):
    from torch import distributions as D

    Xtr, Xte = digits_split
    vae = VAE(n_components=2, hidden=(32,), max_epochs=3, posterior_family="laplace", **FAST).fit(Xtr)
    qz = vae.posterior(Xte[:10])
    assert isinstance(qz.base_dist, D.Laplace)
    np.testing.assert_allclose(vae.transform(Xte[:10]), qz.mean.numpy(), rtol=1e-6)
    assert np.isfinite(vae.history_["train_kl"]).all() and np.isfinite(vae.score_samples(Xte[:20], n_importance=16)).all()
    with pytest.raises(ValueError, match="posterior_family"):
        VAE(posterior_family="cauchy").fit(Xtr)


@pytest.mark.parametrize("family", ["normal", "laplace"])
def test_fast_prior_and_kl_equal_torch_distributions(family):
    # the StandardNormal prior's closed forms against torch's own generic Independent(Normal)
    from torch import distributions as D

    from latentzoo.neural.vae_module import POSTERIORS, StandardNormal

    torch.manual_seed(0)
    q = 6
    prior = StandardNormal(torch.zeros(q, dtype=torch.float64), torch.ones(q, dtype=torch.float64))
    generic = D.Independent(D.Normal(torch.zeros(q, dtype=torch.float64), torch.ones(q, dtype=torch.float64)), 1)
    z = torch.randn(3, 5, q, dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(z), generic.log_prob(z))
    qz = POSTERIORS[family](torch.randn(5, 2 * q, dtype=torch.float64))
    assert not qz._validate_args and not qz.base_dist._validate_args  # no argument checks in the hot loop
    torch.testing.assert_close(D.kl_divergence(qz, prior), D.kl_divergence(qz, generic))
    assert prior.sample((4,)).shape == (4, q) and prior.event_shape == (q,)
