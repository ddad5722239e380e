"""One measure per report: the likelihood policy, dequantisation and the log-likelihood column
against oracles (a known PPCA's true density, an independent dequantised fit, exact cell
probabilities, a nonlinear dataset where the VAE must win)."""
import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from latentzoo import PPCA
from latentzoo.data import Dataset
from latentzoo.experiment import run_comparison
from latentzoo.experiment.likelihood_policy import Dequantization, data_kind, is_discrete_likelihood, resolve_policy


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dataset(X, name="toy"):
    X = np.asarray(X, dtype=np.float32)
    return Dataset(X, None, {"name": name, "source": name, "n_samples": len(X), "n_features": X.shape[1],
                             "image_shape": None, "value_range": (float(X.min()), float(X.max()))})


# ---------------------------------------------------------------------- the policy
def test_data_kind_binary_discrete_continuous():
    rng = np.random.default_rng(0)
    assert data_kind(rng.integers(0, 2, (50, 8)).astype(np.float32)) == ("binary", Dequantization(2, 1.0))
    kind, deq = data_kind((rng.integers(0, 17, (100, 64)) / 16).astype(np.float32))  # the digits' grey levels
    assert kind == "discrete" and deq.levels == 17 and deq.width == pytest.approx(1 / 16)
    kind, deq = data_kind(rng.integers(0, 256, (100, 30)).astype(np.uint8))
    assert kind == "discrete" and (deq.levels, deq.width) == (256, 1.0)
    kind, deq = data_kind(rng.poisson(3.0, (200, 10)) * 2.5 + 1.0)  # counts on a shifted, scaled grid
    assert kind == "discrete" and deq.width == pytest.approx(2.5)
    assert data_kind(rng.normal(size=(200, 5))) == ("continuous", None)
    assert data_kind(rng.random((200, 2000)).astype(np.float32)) == ("continuous", None)


def test_auto_policy_and_user_specs():
    rng = np.random.default_rng(1)
    binary = rng.integers(0, 2, (40, 6)).astype(np.float32)
    p = resolve_policy(binary)
    assert (p.policy, p.data_kind, p.likelihood) == ("auto", "binary", "bernoulli")
    assert p.dequantizes(None) and not p.dequantizes("bernoulli")  # PPCA dequantised, Bernoulli VAE not
    grey = (rng.integers(0, 17, (40, 6)) / 16).astype(np.float32)
    p = resolve_policy(grey)
    assert (p.data_kind, p.likelihood, p.autoencoder_likelihood) == ("discrete", "gaussian-learned", "bernoulli")
    assert p.dequantizes("gaussian-learned") and "lower bound" in p.measure
    assert p.as_dict()["dequantize"] == {"levels": 17, "width": 0.0625}
    user = resolve_policy(grey, "bernoulli")  # a Bernoulli number of grey levels is no likelihood
    assert user.policy == "user" and user.not_applicable("bernoulli").startswith("n/a:")
    cont = resolve_policy(rng.normal(size=(40, 3)))
    assert (cont.data_kind, cont.likelihood, cont.dequantize) == ("continuous", "gaussian-learned", None)
    assert is_discrete_likelihood("bernoulli") and not is_discrete_likelihood("gaussian:0.1")
    with pytest.raises(ValueError, match="needs data in \\[0, 1\\]"):
        resolve_policy(rng.normal(size=(40, 3)), "bernoulli")
    with pytest.raises(ValueError, match="not a registered likelihood"):
        resolve_policy(grey, "poisson")


# ---------------------------------------------------------------------- oracles
class LinearGaussianDecoder(nn.Module):
    """p(x|z) = N(W z + b, diag(s)^2) with s free of z: the generative model of PPCA."""

    def __init__(self, q, d):
        super().__init__()
        self.lin = nn.Linear(q, d)
        self.raw = nn.Parameter(torch.zeros(d))

    def forward(self, z):
        return torch.cat([self.lin(z), self.raw.expand(len(z), -1)], -1)


def test_known_ppca_rows_equal_the_true_mean_log_density():
    rng = np.random.default_rng(0)
    d, q, n = 6, 2, 2500
    W = rng.normal(size=(d, q)) * np.array([2.0, 1.0])
    mu, s2 = rng.normal(size=d), 0.3
    X = rng.normal(size=(n, q)) @ W.T + mu + np.sqrt(s2) * rng.normal(size=(n, d))
    comp = run_comparison(_dataset(X), ["ppca", "vae"], latent_dim=q, epochs=150, hidden=(), n_importance=200,
                          progress=False, params={"vae": {"activation": "identity", "lr": 3e-2, "batch_size": 256,
                                                          "decoder": LinearGaussianDecoder(q, d)}})
    assert comp.setup["likelihood_policy"]["data_kind"] == "continuous"
    true = multivariate_normal(mu, W @ W.T + s2 * np.eye(d)).logpdf(comp.X_test.astype(np.float64))
    se = true.std(ddof=1) / np.sqrt(len(true))  # Monte Carlo error of the mean over the held-out points
    rows = {r.name: r.metrics for r in comp.results}
    assert rows["ppca"]["log_likelihood"] == pytest.approx(true.mean(), abs=3 * se)
    assert rows["vae"]["log_likelihood"] == pytest.approx(true.mean(), abs=3 * se)
    assert rows["ppca"]["log_likelihood_method"] == "exact"
    assert rows["vae"]["log_likelihood_method"] == "importance-sampled (k=200)"
    assert rows["ppca"]["log_likelihood_measure"] == rows["vae"]["log_likelihood_measure"]
    assert rows["ppca"]["bits_per_dim"] == pytest.approx(-rows["ppca"]["log_likelihood"] / (d * np.log(2)))


def _cell_log_prob(model, X, w):
    """Exact log P(x) = log of the PPCA density's mass on the cell [x - w/2, x + w/2]^2 (2-D)."""
    mvn = multivariate_normal(model.mean_, model.get_covariance())
    lo, hi = X - w / 2, X + w / 2
    mass = (mvn.cdf(hi) - mvn.cdf(np.c_[lo[:, 0], hi[:, 1]]) - mvn.cdf(np.c_[hi[:, 0], lo[:, 1]]) + mvn.cdf(lo))
    return np.log(mass)


def test_dequantised_ppca_equals_an_independent_computation_and_bounds_the_discrete_log_probability():
    rng = np.random.default_rng(3)
    w = 0.5
    X = np.round(rng.multivariate_normal([0.0, 1.0], [[1.0, 0.8], [0.8, 1.0]], size=1200) / w) * w
    comp = run_comparison(_dataset(X), ["ppca"], latent_dim=1, progress=False, seed=0)
    policy = comp.setup["likelihood_policy"]
    assert policy["data_kind"] == "discrete" and policy["dequantize"]["width"] == pytest.approx(w)
    got = comp.results[0].metrics["log_likelihood"]
    # independent: fit on x + w (u - 1/2) with fresh draws, score averaging over many u per point
    Xtr, Xte = comp.X_train.astype(np.float64), comp.X_test.astype(np.float64)
    ppca = PPCA(1).fit(Xtr + w * (rng.random(Xtr.shape) - 0.5))
    per_u = np.stack([ppca.score_samples(Xte + w * (rng.random(Xte.shape) - 0.5)) for _ in range(200)])
    independent = per_u.mean() + 2 * np.log(w)
    se = per_u.std(axis=0, ddof=1).mean() / np.sqrt(len(Xte))  # one u draw per point in the report
    assert got == pytest.approx(independent, abs=4 * se + 0.01)
    # the bound: <= the exact log-probability of the discrete values under the report's own model
    exact = _cell_log_prob(comp.results[0].model, Xte, w).mean()
    assert got <= exact + 3 * se
    assert exact - got < 0.2  # and a tight one for cells this small


def test_vae_beats_ppca_on_two_moons_embedded_in_10d():
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(0)
    P, _ = make_moons(1500, noise=0.05, random_state=0)
    Q, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    X = P @ Q.T + 0.05 * rng.normal(size=(1500, 10))
    comp = run_comparison(_dataset(X, "moons-10d"), ["ppca", "vae"], latent_dim=1, epochs=80, hidden=(64, 64),
                          n_importance=200, progress=False, params={"vae": {"lr": 3e-3}})
    rows = {r.name: r.metrics for r in comp.results}
    assert rows["vae"]["log_likelihood"] > rows["ppca"]["log_likelihood"] + 3.0


def test_bernoulli_on_binary_data_and_dequantised_ppca_share_the_measure():
    rng = np.random.default_rng(2)
    X = (rng.random((300, 12)) < np.linspace(0.1, 0.9, 12)).astype(np.float32)
    comp = run_comparison(_dataset(X), ["ppca", "vae"], latent_dim=2, epochs=3, hidden=(16,), n_importance=20,
                          progress=False)
    rows = {r.name: r.metrics for r in comp.results}
    assert comp.results[1].model.likelihood == "bernoulli"
    assert rows["vae"]["log_likelihood_method"] == "importance-sampled (k=20)"
    assert rows["ppca"]["log_likelihood_method"] == "exact, uniform dequantisation"
    # log-probabilities of binary vectors: never above 0 (a density of the dequantised data could be)
    assert rows["vae"]["log_likelihood"] < 0 and rows["ppca"]["log_likelihood"] < 0
    # independent Bernoulli per feature is the best a 0-dim model can do: the bound must not beat the entropy
    p = comp.X_train.mean(0)
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum()
    assert rows["ppca"]["log_likelihood"] < -entropy + 0.5


def test_user_bernoulli_on_grey_levels_is_not_a_log_likelihood():
    X = (np.random.default_rng(4).integers(0, 17, (200, 16)) / 16).astype(np.float32)
    comp = run_comparison(_dataset(X), ["ppca", "vae"], latent_dim=2, epochs=2, hidden=(8,), n_importance=10,
                          likelihood="bernoulli", progress=False)
    vae = comp.results[1].metrics
    assert vae["log_likelihood"] is None and vae["bits_per_dim"] is None
    assert vae["log_likelihood_method"].startswith("n/a: a bernoulli decoder on discrete")
    assert comp.results[0].metrics["log_likelihood"] is not None
