"""||J_f(x)||_F^2: exact against torch.autograd.functional.jacobian and Rifai's closed form; Hutchinson by Monte Carlo."""
import pytest
import torch
from torch import nn

from latentzoo.neural.jacobian import (ACTIVATION_DERIVATIVES, contractive_flop_ratio, hutchinson_frobenius_sq,
                                       hutchinson_samples, jacobian_frobenius_sq, jacobian_mode, mlp_frobenius_sq,
                                       mlp_layers)
from latentzoo.neural.modules import ConvEncoder, mlp


def _reference(f, x, create_graph=False):
    """Squared Frobenius norms from the full per-sample Jacobian (autograd oracle)."""
    return torch.stack([
        torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xi,
                                           create_graph=create_graph).pow(2).sum()
        for xi in x
    ])


def _encoders():
    torch.manual_seed(0)
    yield "mlp", mlp([6, 9, 7, 3], "tanh"), torch.randn(5, 6, dtype=torch.float64)
    yield "mlp-wide-code", mlp([3, 8, 5], "softplus"), torch.randn(4, 3, dtype=torch.float64)
    yield "conv", ConvEncoder((8, 8), 3, "elu", channels=(4, 6)), torch.randn(3, 64, dtype=torch.float64)


@pytest.mark.parametrize("mode", ["auto", "rev", "fwd"])
@pytest.mark.parametrize("name, f, x", list(_encoders()), ids=lambda v: v if isinstance(v, str) else "")
def test_matches_autograd_jacobian(name, f, x, mode):
    f = f.double()
    got, h = jacobian_frobenius_sq(f, x, mode=mode, n_out=f(x[:1]).shape[1], return_output=True)
    torch.testing.assert_close(got, _reference(f, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h, f(x))


def test_rifai_closed_form_for_sigmoid_layer():
    torch.manual_seed(1)
    lin = nn.Linear(7, 4).double()
    f = nn.Sequential(lin, nn.Sigmoid())
    x = torch.randn(6, 7, dtype=torch.float64)
    h = f(x)  # (B, q)
    # Rifai et al. (2011) eq. 5: sum_j (h_j (1 - h_j))^2 sum_i W_ji^2
    closed = ((h * (1 - h)) ** 2 * lin.weight.pow(2).sum(1)).sum(1)
    torch.testing.assert_close(jacobian_frobenius_sq(f, x), closed, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["auto", "rev", "fwd"])
@pytest.mark.parametrize("name, f, x", list(_encoders()), ids=lambda v: v if isinstance(v, str) else "")
def test_gradients_match_autograd_of_reference(name, f, x, mode):
    f = f.double()
    params = [p for p in f.parameters()]
    weights = torch.linspace(0.5, 1.5, len(x), dtype=torch.float64)  # a generic linear functional
    g = torch.autograd.grad((weights * jacobian_frobenius_sq(f, x, mode=mode)).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((weights * _reference(f, x, create_graph=True)).sum(), params, allow_unused=True)
    for a, b in zip(g, g_ref):
        if b is None:  # e.g. the last bias: the Jacobian does not depend on it
            assert a is None or torch.all(a == 0)
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_gradcheck_wrt_input():
    torch.manual_seed(2)
    f = mlp([4, 5, 2], "tanh").double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: jacobian_frobenius_sq(f, v), (x,))


def test_works_under_no_grad_and_mode_choice():
    f = mlp([4, 6, 2], "tanh").double()
    x = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():
        got = jacobian_frobenius_sq(f, x)
    torch.testing.assert_close(got, _reference(f, x))
    assert jacobian_mode(784, 16) == "rev" and jacobian_mode(3, 16) == "fwd"
    with pytest.raises(ValueError, match="mode"):
        jacobian_frobenius_sq(f, x, mode="sideways")


# ---------------------------------------------------------------- the explicit MLP product
def _mlps():
    """MLP encoders of every activation with a closed-form derivative, and odd layouts."""
    torch.manual_seed(3)
    for act in ACTIVATION_DERIVATIVES:
        if act is nn.Identity:
            continue
        yield act.__name__, nn.Sequential(nn.Linear(6, 9), act(), nn.Linear(9, 7), act(), nn.Linear(7, 3))
    yield "leaky-0.2", nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 2))
    yield "elu-alpha-0.5", nn.Sequential(nn.Linear(6, 8), nn.ELU(0.5), nn.Linear(8, 2))
    yield "softplus-beta-3", nn.Sequential(nn.Linear(6, 8), nn.Softplus(beta=3.0, threshold=1.0), nn.Linear(8, 2))
    yield "identity", mlp([6, 5, 2], "identity")
    yield "one-linear", nn.Sequential(nn.Linear(6, 3))
    yield "sigmoid-code", nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3), nn.Sigmoid())
    yield "act-first", nn.Sequential(nn.Tanh(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize("gram", [None, False, True])
@pytest.mark.parametrize("name, f", list(_mlps()), ids=lambda v: v if isinstance(v, str) else "")
def test_mlp_product_matches_autograd_and_torch_func(name, f, gram):
    """Oracles: the full per-sample Jacobians of torch.autograd.functional.jacobian and the
    torch.func path (mode="rev"): the norms, the code and the parameter gradients (the
    penalty trains), with the product J = A W_1 and with the Gram identity."""
    f = f.double()
    x = torch.randn(5, 6, dtype=torch.float64) * 2
    layers = mlp_layers(f)
    assert layers is not None
    got, h = mlp_frobenius_sq(layers, x, return_output=True, gram=gram)
    torch.testing.assert_close(got, _reference(f, x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got, jacobian_frobenius_sq(f, x, mode="rev"), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h, f(x))
    params = list(f.parameters())
    weights = torch.linspace(0.5, 1.5, len(x), dtype=torch.float64)
    g = torch.autograd.grad((weights * mlp_frobenius_sq(layers, x, gram=gram)).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((weights * _reference(f, x, create_graph=True)).sum(), params, allow_unused=True)
    for a, b in zip(g, g_ref):
        if b is None or torch.all(b == 0):  # e.g. the last bias: the Jacobian does not depend on it
            assert a is None or torch.all(a == 0)
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gram", [False, True])
def test_mlp_product_with_respect_to_the_data_columns_only(gram):
    """n_wrt: the encoder reads (B, 2D) (data then a missing-value indicator); the norm is of
    the Jacobian's first D columns (oracle: the sliced autograd Jacobian)."""
    torch.manual_seed(4)
    f = mlp([8, 6, 2], "tanh").double()
    x = torch.randn(3, 8, dtype=torch.float64)
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xi) for xi in x])
    got = mlp_frobenius_sq(mlp_layers(f), x, n_wrt=4, gram=gram)
    torch.testing.assert_close(got, J[..., :4].pow(2).sum((1, 2)))


@pytest.mark.parametrize("mode", ["auto", "rev", "fwd"])
def test_per_row_column_mask(mode):
    """wrt_mask: per row, only the masked columns of J (a row's observed entries), after n_wrt
    (oracle: the masked autograd Jacobian); the explicit MLP product and torch.func agree."""
    torch.manual_seed(5)
    f = mlp([8, 6, 2], "tanh").double()
    x = torch.randn(4, 8, dtype=torch.float64)
    keep = torch.rand(4, 4) < 0.5
    keep[0] = True
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xi) for xi in x])
    want = (J[..., :4] * keep.unsqueeze(1)).pow(2).sum((1, 2))
    torch.testing.assert_close(jacobian_frobenius_sq(f, x, mode=mode, n_out=2, n_wrt=4, wrt_mask=keep), want)


def test_only_plain_mlps_take_the_product_path():
    class Doubled(nn.Sequential):
        def forward(self, x):
            return 2 * super().forward(x)

    assert mlp_layers(mlp([4, 3, 2], "relu")) is not None
    assert mlp_layers(ConvEncoder((8, 8), 3)) is None
    assert mlp_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU(inplace=True), nn.Linear(3, 2))) is None
    assert mlp_layers(nn.Sequential(nn.Linear(4, 3), nn.GELU(approximate="tanh"), nn.Linear(3, 2))) is None
    assert mlp_layers(nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2))) is None
    assert mlp_layers(Doubled(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))) is None
    f = Doubled(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()  # the torch.func path still applies
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(jacobian_frobenius_sq(f, x), _reference(f, x))


@pytest.mark.parametrize("q", [2, 8])
def test_flop_ratio_counts_the_matrix_products_of_a_contractive_step(q):
    """Oracle: torch's FlopCounterMode over the forward and backward of the autoencoder's
    training objective, with and without the exact penalty (784-512-256-q, batch 128)."""
    from torch.utils.flop_counter import FlopCounterMode

    from latentzoo import Autoencoder
    from latentzoo.neural.likelihoods import make_likelihood

    x = torch.rand(128, 784)
    flops = {}
    for c in (0.0, 0.1):
        module = Autoencoder(q, hidden=(512, 256), likelihood="bernoulli", contractive=c, device="cpu")._build_module(
            784, make_likelihood("bernoulli"))
        with FlopCounterMode(display=False) as counter:
            module(x).loss.backward()
        flops[c] = counter.get_total_flops()
    assert flops[0.1] / flops[0.0] == pytest.approx(contractive_flop_ratio([784, 512, 256, q], 128), rel=0.01)


# ---------------------------------------------------------------- Hutchinson estimator
def _jjt(f, x):
    """A_b = J_b J_b^T (B, q, q) from the autograd oracle's full Jacobians."""
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xi) for xi in x])
    return J @ J.transpose(1, 2)


@pytest.mark.parametrize("name, f, x", list(_encoders()), ids=lambda v: v if isinstance(v, str) else "")
def test_hutchinson_is_unbiased_with_the_documented_variance(name, f, x):
    # Monte Carlo over 40000 probes: mean within 5 standard errors of the exact norm, the
    # sample variance within 5% of 2 sum_{i != j} A_ij^2 (Rademacher probes), A = J J^T
    f = f.double()
    m = 40000
    samples, h = hutchinson_samples(f, x, m, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (m, len(x))
    torch.testing.assert_close(h, f(x))
    A = _jjt(f, x)
    exact = A.diagonal(dim1=1, dim2=2).sum(-1)
    var = 2 * (A.pow(2).sum((1, 2)) - A.diagonal(dim1=1, dim2=2).pow(2).sum(-1))
    se = (var / m).sqrt()
    assert torch.all((samples.mean(0) - exact).abs() <= 5 * se + 1e-12)
    torch.testing.assert_close(samples.var(0), var, rtol=0.05, atol=1e-12)
    rel_sd = var.sqrt() / exact  # the documented bound sqrt(2 (1 - 1/q))
    assert torch.all(rel_sd <= (2 * (1 - 1 / A.shape[-1])) ** 0.5 + 1e-12)


def test_hutchinson_gradient_is_unbiased():
    # the gradient of the mean of m probes is the mean of m per-probe gradients: with many
    # probes it converges to the gradient of the exact penalty
    torch.manual_seed(3)
    f = mlp([6, 9, 3], "tanh").double()
    x = torch.randn(4, 6, dtype=torch.float64)
    params = list(f.parameters())[:2]  # first layer: the penalty depends on it
    est = hutchinson_frobenius_sq(f, x, n_projections=40000, generator=torch.Generator().manual_seed(1))
    g = torch.autograd.grad(est.sum(), params)
    g_ref = torch.autograd.grad(_reference(f, x, create_graph=True).sum(), params)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=0.03, atol=0.03 * b.abs().max().item())


def test_hutchinson_with_a_diagonal_jjt_is_exact():
    # orthogonal Jacobian rows (A = J J^T diagonal): every probe gives ||J||_F^2 exactly
    lin = nn.Linear(5, 3, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.linalg.qr(torch.randn(5, 3, dtype=torch.float64))[0].T * torch.tensor([[1.0], [2.0], [3.0]]))
    x = torch.randn(4, 5, dtype=torch.float64)
    samples, _ = hutchinson_samples(lin, x, 7)
    torch.testing.assert_close(samples, torch.full_like(samples, 14.0))


def test_contractive_estimator_in_the_autoencoder():
    from latentzoo import Autoencoder

    X = torch.rand(64, 6).numpy()
    kw = dict(hidden=(8,), likelihood="bernoulli", contractive=0.1, max_epochs=2, verbose=0, random_state=0)
    ae = Autoencoder(3, contractive_estimator="hutchinson", contractive_projections=2, **kw).fit(X)
    assert ae.history_["train_contractive"][-1] > 0
    module = ae.module_
    xb = torch.from_numpy(X[:16])
    exact = 0.1 * jacobian_frobenius_sq(module.encoder, xb)
    torch.manual_seed(0)
    est = torch.stack([module(xb).terms["contractive"] for _ in range(2000)]).mean(0)  # Monte Carlo
    torch.testing.assert_close(est, exact, rtol=0.1, atol=1e-6)
    for bad in ({"contractive_estimator": "stochastic"}, {"contractive_projections": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Autoencoder(3, **{**kw, **bad}).fit(X)


def test_hutchinson_restricted_to_the_data_columns():
    # n_wrt: the norm of the Jacobian's first n_wrt columns only (an appended mask is no input)
    torch.manual_seed(4)
    f = mlp([6, 7, 3], "tanh").double()
    x = torch.randn(3, 6, dtype=torch.float64)
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), xi) for xi in x])
    exact = J[:, :, :4].pow(2).sum((1, 2))
    torch.testing.assert_close(jacobian_frobenius_sq(f, x, n_wrt=4), exact)
    est = hutchinson_frobenius_sq(f, x, n_projections=40000, n_wrt=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, exact, rtol=0.05, atol=1e-8)
