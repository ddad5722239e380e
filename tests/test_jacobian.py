"""Exact ||J_f(x)||_F^2 against torch.autograd.functional.jacobian and Rifai's closed form."""
import pytest
import torch
from torch import nn

from latentzoo.neural.jacobian import jacobian_frobenius_sq, jacobian_mode
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


@pytest.mark.parametrize("mode", ["rev", "fwd"])
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
