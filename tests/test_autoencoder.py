"""Autoencoder (AE / DAE / CAE): mathematics against oracles, persistence, resume, errors."""
import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from torch import nn

import latentzoo
from latentzoo import Autoencoder
from latentzoo.registry import MODELS
from latentzoo.neural.corruption import Masking
from latentzoo.neural.engine import TrainingDiverged

FAST = dict(verbose=0, random_state=0, patience=None)



def _untimed(history):
    """The history without wall-clock epoch times (the only part a replay cannot repeat)."""
    return {k: v for k, v in history.items() if k != "epoch_time"}

def _params(m):
    return [p.detach().clone() for p in m.module_.parameters()]


def _same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.module_.parameters(), b.module_.parameters()))


def test_linear_autoencoder_spans_pca_subspace(digits):
    # Baldi & Hornik (1989): the optimal linear AE reconstructs by projecting on the top-q PCs
    X, _ = digits
    q = 3
    ae = Autoencoder(q, hidden=(), activation="identity", lr=3e-2, max_epochs=40, batch_size=64,
                     validation_fraction=0, **FAST).fit(X)
    P = PCA(q).fit(X).components_.T  # (D, q)
    W_dec = ae.module_.decoder[0].weight.detach().numpy()  # (D, q): the decoder's column space
    assert np.degrees(subspace_angles(W_dec, P)).max() < 10
    # the centred reconstructions lie in the same subspace
    R = ae.inverse_transform(ae.transform(X))
    U = np.linalg.svd(R - R.mean(0), full_matrices=False)[2][:q].T
    assert np.degrees(subspace_angles(U, P)).max() < 10


def test_denoising_reconstructs_clean_targets(digits):
    X, _ = digits
    Xtr, Xte = X[:1200], X[1200:]
    kw = dict(hidden=(64,), likelihood="bernoulli", lr=3e-3, max_epochs=15, batch_size=64, **FAST)
    dae = Autoencoder(16, noise=Masking(0.3), **kw).fit(Xtr)
    plain = Autoencoder(16, **kw).fit(Xtr)
    torch.manual_seed(0)
    Xc = Masking(0.3)(torch.from_numpy(Xte)).numpy()

    def err(model):
        return ((model.inverse_transform(model.transform(Xc)) - Xte) ** 2).sum(1).mean()

    # the DAE output is closer to the clean data than the corrupted input it was given,
    # and closer than a plain autoencoder's (same network and seed, trained without noise)
    assert err(dae) < 0.75 * ((Xc - Xte) ** 2).sum(1).mean()
    assert err(dae) < err(plain)
    assert "train_rec" in dae.history_ and "val_rec" in dae.history_


def test_contractive_penalty_reduces_jacobian_norm(digits):
    X, _ = digits
    Xtr, Xte = X[:1200], X[1200:]
    kw = dict(hidden=(64,), lr=3e-3, max_epochs=10, batch_size=64, **FAST)
    plain = Autoencoder(8, **kw).fit(Xtr)
    cae = Autoencoder(8, contractive=MODELS["cae"].params["contractive"], **kw).fit(Xtr)
    assert cae.jacobian_norm(Xte).mean() < 0.5 * plain.jacobian_norm(Xte).mean()
    # the penalty logged is lambda * ||J||^2 (zero for the plain AE)
    assert plain.history_["train_contractive"][-1] == 0 and cae.history_["train_contractive"][-1] > 0


def test_jacobian_norm_matches_autograd(digits):
    X, _ = digits
    ae = Autoencoder(3, hidden=(16,), activation="tanh", max_epochs=1, **FAST).fit(X[:200])
    enc = ae.module_.encoder
    ref = [torch.autograd.functional.jacobian(lambda v: enc(v[None])[0], torch.from_numpy(x)).pow(2).sum().item()
           for x in X[:5]]
    np.testing.assert_allclose(ae.jacobian_norm(X[:5]), ref, rtol=1e-4)


@pytest.mark.parametrize("kw", [dict(activation="tanh"), dict(activation="tanh", missing_indicator=True),
                                dict(architecture="conv", image_shape=(4, 4), activation="elu")],
                         ids=["mlp", "mlp-indicator", "conv"])
def test_jacobian_norm_of_rows_with_nan_is_over_the_observed_entries(kw):
    # transform fills a NaN entry (missing_fill) before the encoder, so the code is a function
    # of the observed entries only: the Jacobian is that of x_o -> transform(x), whose columns
    # at missing entries are 0. Oracle: torch.autograd through module_.code (the transform path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 16)).astype(np.float32)
    X[rng.random(X.shape) < 0.2] = np.nan
    ae = Autoencoder(3, hidden=(8,), max_epochs=1, **kw, **FAST).fit(X)
    rows = X[:6].copy()
    rows[5] = np.nan
    rows[5, 3] = 1.0  # a single observed entry
    assert np.isnan(rows).any(axis=1).all()

    def ref(x):
        x = torch.from_numpy(x)
        obs = ~torch.isnan(x)

        def code(v):
            return ae.module_.code(x.masked_scatter(obs, v)[None])[0]
        return torch.autograd.functional.jacobian(code, x[obs]).pow(2).sum().item()

    got = ae.jacobian_norm(rows)
    np.testing.assert_allclose(got, [ref(x) for x in rows], rtol=1e-4)
    # complete rows: the full Jacobian, as before
    full = np.nan_to_num(X[:3], nan=0.5)
    np.testing.assert_allclose(ae.jacobian_norm(full), [ref(x) for x in full], rtol=1e-4)


def test_dae_score_field_matches_tweedie_on_gaussian_mixture():
    from latentzoo.data import gaussian_mixture_density, load_dataset

    sigma = 0.3
    X = load_dataset("gaussian-mixture", n_samples=4000).X
    dae = Autoencoder(2, hidden=(64, 64), noise=f"gaussian:{sigma}", lr=3e-3, max_epochs=40, batch_size=64,
                      **FAST).fit(X)
    smoothed = gaussian_mixture_density().smoothed(sigma)  # p * N(0, sigma^2 I)
    pts = smoothed.sample(2000, np.random.default_rng(1))
    ref = smoothed.score(pts)
    # where the density is not negligible (> 1% of its peak) and the score has a direction
    keep = (smoothed.log_prob(pts) > np.log(0.01) + smoothed.log_prob(smoothed.means).max()) & (
        np.linalg.norm(ref, axis=1) > 1.0)
    s = dae.score_field(pts)[keep]
    cos = (s * ref[keep]).sum(1) / np.linalg.norm(s, axis=1) / np.linalg.norm(ref[keep], axis=1)
    assert keep.mean() > 0.5 and cos.mean() >= 0.9


def test_score_field_needs_gaussian_noise(digits):
    X, _ = digits
    ae = Autoencoder(2, hidden=(8,), max_epochs=1, noise="masking:0.2", **FAST).fit(X[:100])
    with pytest.raises(ValueError, match="Gaussian noise"):
        ae.score_field(X[:3])


@pytest.mark.parametrize("noise", [None, "masking:0.2", Masking(0.2)])
def test_save_load_round_trip(digits, tmp_path, noise):
    X, _ = digits
    ae = Autoencoder(2, hidden=(8,), likelihood="bernoulli", noise=noise, contractive=0.01, max_epochs=2,
                     device="cpu", **FAST).fit(X[:200])
    ae.save(tmp_path / "ae.safetensors")
    back = latentzoo.load(tmp_path / "ae.safetensors").to("cpu")
    assert back.hidden == (8,) and back.n_components == 2
    np.testing.assert_array_equal(back.transform(X), ae.transform(X))
    np.testing.assert_array_equal(back.inverse_transform(ae.transform(X)), ae.inverse_transform(ae.transform(X)))
    assert back.history_ == ae.history_


def test_resume_equals_uninterrupted_fit(digits, tmp_path):
    X, _ = digits
    kw = dict(hidden=(16,), noise="gaussian:0.1", batch_size=64, verbose=0, random_state=3, patience=20)
    full = Autoencoder(2, max_epochs=6, checkpoint_dir=str(tmp_path / "full"), **kw).fit(X[:500])
    Autoencoder(2, max_epochs=3, checkpoint_dir=str(tmp_path / "part"), **kw).fit(X[:500])  # "killed" at 3
    res = Autoencoder(2, max_epochs=6, checkpoint_dir=str(tmp_path / "part"), **kw).fit(X[:500], resume=True)
    assert _same_weights(full, res)
    assert _untimed(full.history_) == _untimed(res.history_)


def test_same_random_state_same_model(digits):
    X, _ = digits
    a = Autoencoder(2, hidden=(8,), max_epochs=2, noise="masking:0.1", **FAST).fit(X[:300])
    b = Autoencoder(2, hidden=(8,), max_epochs=2, noise="masking:0.1", **FAST).fit(X[:300])
    c = Autoencoder(2, hidden=(8,), max_epochs=2, noise="masking:0.1", verbose=0, random_state=1).fit(X[:300])
    assert _same_weights(a, b) and not _same_weights(a, c)


def test_divergence_raises_and_keeps_finite_weights(digits):
    X, _ = digits
    ae = Autoencoder(2, hidden=(8,), max_epochs=1, **FAST).fit(X[:200])
    before = _params(ae)
    with pytest.raises(TrainingDiverged, match=r"epoch \d+"):
        ae.set_params(lr=1e8).fit(X[:200] * 1e18)
    assert all(torch.equal(p, q) for p, q in zip(before, ae.module_.parameters()))


class _NaNEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 2)

    def forward(self, x):
        return self.lin(x) * float("nan")


def test_nan_module_raises_training_diverged(digits):
    X, _ = digits
    ae = Autoencoder(2, encoder=_NaNEncoder(), decoder=nn.Linear(2, 64), max_epochs=2, **FAST)
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        ae.fit(X[:100])
    assert not hasattr(ae, "module_")


def test_user_modules(digits, tmp_path):
    X, _ = digits
    enc, dec = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3)), nn.Linear(3, 64)
    ae = Autoencoder(3, encoder=enc, decoder=dec, max_epochs=1, **FAST).fit(X[:100])
    assert ae.transform(X[:5]).shape == (5, 3)
    assert ae.module_.encoder is not enc  # the user's module is not trained in place
    with pytest.raises(TypeError, match="state_dict"):
        ae.save(tmp_path / "ae.safetensors")
    with pytest.raises(ValueError, match=r"expected \(batch, n_components=2\)"):
        Autoencoder(2, encoder=enc, decoder=dec, max_epochs=1, **FAST).fit(X[:100])
    with pytest.raises(ValueError, match="both encoder and decoder"):
        Autoencoder(3, encoder=enc, **FAST).fit(X[:100])


def test_conv_architecture(digits):
    X, _ = digits
    ae = Autoencoder(2, architecture="conv", image_shape=(8, 8), likelihood="bernoulli", max_epochs=1,
                     contractive=0.01, **FAST).fit(X[:64])
    assert ae.transform(X[:4]).shape == (4, 2) and ae.inverse_transform(np.zeros((1, 2))).shape == (1, 64)
    with pytest.raises(ValueError, match="image_shape"):
        Autoencoder(2, architecture="conv", max_epochs=1, **FAST).fit(X[:64])
    with pytest.raises(ValueError, match=r"image_shape \(4, 4\) has 16 pixels but the data have 64"):
        Autoencoder(2, architecture="conv", image_shape=(4, 4), max_epochs=1, **FAST).fit(X[:64])


def test_bernoulli_needs_unit_interval():
    X = np.linspace(-0.3, 2, 40).reshape(10, 4)
    with pytest.raises(ValueError, match=r"likelihood='bernoulli' needs data in \[0, 1\]; got min -0.3, max 2"):
        Autoencoder(likelihood="bernoulli", **FAST).fit(X)


@pytest.mark.parametrize("param, value, match", [
    ("hidden", (8, 0), "hidden"),
    ("hidden", 8, "hidden"),
    ("activation", "swish", "activation"),
    ("likelihood", "poisson", "likelihood"),
    ("noise", "blur:0.1", "noise"),
    ("noise", "masking:2", "noise"),
    ("contractive", -1.0, "contractive"),
    ("architecture", "transformer", "architecture"),
    ("image_shape", (8,), "image_shape"),
    ("encoder", "mlp", "encoder"),
    ("n_components", 0, "n_components"),
    ("lr", "fast", "lr"),  # a value of the wrong type entirely: a ValueError too (as documented)
    ("max_epochs", 2.5, "max_epochs"),
])
def test_bad_parameters_are_clear_errors(param, value, match):
    with pytest.raises(ValueError, match=f"invalid value for parameter '{match}'"):
        Autoencoder(**{param: value}, **FAST).fit(np.random.default_rng(0).random((20, 4)))


def test_inverse_transform_checks_code_width(digits):
    X, _ = digits
    ae = Autoencoder(2, hidden=(8,), max_epochs=1, **FAST).fit(X[:100])
    with pytest.raises(ValueError, match="n_components=2"):
        ae.inverse_transform(np.zeros((3, 5)))


@pytest.mark.parametrize("contractive", [0.0, 0.3])
def test_training_objective_and_gradients_equal_the_plain_formula(contractive):
    """Oracle for the fast path (closed-form Bernoulli log-density, the MLP Jacobian product):
    the module's loss and its parameter gradients equal torch.autograd on the plain formula,
    mean_b [-sum_d Bernoulli(sigmoid(l_bd)).log_prob(x_bd) + c ||J_f(x_b)||_F^2], with the
    torch.distributions log_prob and autograd's full per-sample Jacobians."""
    from latentzoo.neural.likelihoods import make_likelihood

    torch.manual_seed(0)
    ae = Autoencoder(3, hidden=(7, 5), activation="tanh", likelihood="bernoulli", contractive=contractive)
    module = ae._build_module(6, make_likelihood("bernoulli")).double()
    x = torch.rand(9, 6, dtype=torch.float64)
    params = list(module.parameters())
    loss = module(x).loss
    g = torch.autograd.grad(loss, params, allow_unused=True)

    logits = module.decoder(module.encoder(x))
    rec = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1)
    enc = module.encoder
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: enc(v.unsqueeze(0)).squeeze(0), xi,
                                                          create_graph=True).pow(2).sum() for xi in x])
    ref = (rec + contractive * jac).mean()
    g_ref = torch.autograd.grad(ref, params, allow_unused=True)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g, g_ref):
        if b is None:
            assert a is None or torch.all(a == 0)
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
