"""Exact squared Frobenius norm of an encoder's Jacobian, ``||J_f(x)||_F^2``, per sample.

The contractive autoencoder (Rifai et al. 2011) penalises
``||J_f(x)||_F^2 = sum_{j,i} (d h_j / d x_i)^2`` for any encoder ``h = f(x)``. For a
batch (B, D) -> (B, q) the Jacobian of each sample is a (q, D) matrix; it is computed
exactly with ``torch.func`` transforms, batched over both the samples and the basis
vectors (no Python loop of backward passes):

- reverse mode (``"rev"``): ``vmap`` over the batch of ``jacrev``, i.e. q vector-Jacobian
  products ``e_j^T J`` batched together; cost about q encoder passes;
- forward mode (``"fwd"``): ``vmap`` of ``jacfwd``, D Jacobian-vector products ``J e_i``;
  cheaper when q > D.

``"auto"`` picks the mode with fewer products, and for an MLP encoder (an
``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations, e.g. every
``architecture="mlp"`` encoder) with q <= D it forms the Jacobian as the explicit product
``J = W_L D_{L-1} W_{L-1} ... D_1 W_1`` instead (:func:`mlp_frobenius_sq`), ``D_l`` the
diagonal matrix of the activation's derivative at layer l (:data:`ACTIVATION_DERIVATIVES`):
the same q x D products, accumulated from the code end as batched matrix products, and
trained with one ordinary backward pass instead of ``torch.func``'s double backward.
When it saves operations, the first layer's product is replaced by the Gram identity
``||A W_1||_F^2 = sum((A G) * A)``, ``G = W_1 W_1^T`` computed once per batch. Other
encoders (convolutional, user modules) take the ``torch.func`` path. Either way the
result is an ordinary differentiable tensor: gradients flow to the encoder's parameters,
so the penalty trains, and both work inside ``torch.no_grad()`` too (the transforms
ignore an outer ``no_grad``), so validation and evaluation can call this.

Pass the inner encoder module, not a ``DistributedDataParallel`` wrapper.

Cost: the exact norm needs q vector-Jacobian products (or D Jacobian-vector products).
For an MLP encoder the q rows of ``J`` cost ``q * n_l n_{l-1}`` multiply-adds per sample
for each weight below the code layer, and their backward twice that; a plain
autoencoder step (forward and backward of encoder and decoder) costs about
``3 * 2 * sum_l n_l n_{l-1}``, so a contractive step costs about ``1 + q/2`` plain steps in
multiply-adds (:func:`contractive_flop_ratio`, checked against torch's flop counter):
set by arithmetic, not by batching. For 784-512-256-q and batch 128 that is 2.1 / 3.3 /
4.8 at q = 2 / 4 / 8 (the Gram identity from q = 5); the measured time ratios
(``benchmarks/bench_autoencoder.py``) fall below these, as the plain step's elementwise
work and Adam are not counted.

The unbiased stochastic estimator (:func:`hutchinson_frobenius_sq`, Hutchinson 1990)
replaces the q basis vectors by ``m`` random Rademacher vectors ``v`` in code space:
``E ||J^T v||^2 = E v^T J J^T v = tr(J J^T) = ||J||_F^2`` since ``E v v^T = I``. With
``A = J J^T`` (q x q) the variance of one probe is ``2 sum_{i != j} A_ij^2`` (Gaussian
probes: ``2 ||A||_F^2``, never smaller), the mean of ``m`` probes ``1/m`` of that. As
``A_ij^2 <= A_ii A_jj``, the relative standard deviation is at most
``sqrt(2 (1 - 1/q) / m)`` (a rank-one ``A`` with equal diagonal: about 1.4 / sqrt(m)),
and 0 when ``A`` is diagonal (orthogonal rows of ``J``). The gradient of the
estimate is an unbiased estimate of the penalty's gradient (the probes do not depend
on the parameters). Cost: ``m`` products instead of ``q``.

References
----------
Rifai, Vincent, Muller, Glorot & Bengio (2011), Contractive auto-encoders: explicit
invariance during feature extraction, ICML (eq. 3 and the sigmoid closed form, eq. 5).
Hutchinson (1990), A stochastic estimator of the trace of the influence matrix for
Laplacian smoothing splines, Commun. Stat. Simul. Comput. 19(2).
"""
from __future__ import annotations

import math
from itertools import pairwise
from typing import Callable

import torch
from torch import nn
from torch.func import jacfwd, jacrev, vjp, vmap

__all__ = ["ACTIVATION_DERIVATIVES", "ESTIMATORS", "contractive_flop_ratio", "hutchinson_frobenius_sq",
           "hutchinson_samples", "jacobian_frobenius_sq", "jacobian_mode", "mlp_frobenius_sq", "mlp_layers"]


def jacobian_mode(n_in: int, n_out: int) -> str:
    """The cheaper exact mode: reverse (q VJPs) unless the code is wider than the input."""
    return "fwd" if n_out > n_in else "rev"


def jacobian_frobenius_sq(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                          mode: str = "auto", n_out: int | None = None,
                          return_output: bool = False, n_wrt: int | None = None,
                          wrt_mask: torch.Tensor | None = None):
    """``||J_f(x_b)||_F^2`` for every row ``x_b`` of ``x``.

    Parameters
    ----------
    f : callable or torch.nn.Module
        Maps a batch (B, D) to (B, q), row by row (no coupling between rows, e.g. no
        batch normalisation in training mode).
    x : Tensor of shape (B, D)
    mode : {"auto", "rev", "fwd"}
        ``torch.func`` reverse or forward mode; ``"auto"``: the explicit product of an MLP
        encoder (:func:`mlp_frobenius_sq`) when q <= D, else :func:`jacobian_mode`
        (needs ``n_out``, else reverse mode).
    n_out : int, optional
        The code size q, used by ``mode="auto"``.
    return_output : bool
        Also return ``f(x)`` (B, q), computed in the same pass (saves a forward).
    n_wrt : int, optional
        Differentiate with respect to the first ``n_wrt`` input columns only (the data,
        not a missing-value indicator appended to them); default all ``D``.
    wrt_mask : bool Tensor of shape (B, n_wrt), optional
        Per row, the input columns to differentiate with respect to (the observed entries of
        a row with missing values: the Jacobian of ``x_obs -> f(x)``); default all.

    Returns
    -------
    sq_norm : Tensor of shape (B,)
    h : Tensor of shape (B, q), only if ``return_output``
    """
    if mode not in ("auto", "rev", "fwd"):
        raise ValueError(f"jacobian mode must be 'auto', 'rev' or 'fwd', got {mode!r}")
    if mode == "auto":
        layers = mlp_layers(f)
        if layers is not None and (n_out is None or jacobian_mode(x.shape[-1], n_out) == "rev"):
            return mlp_frobenius_sq(layers, x, return_output=return_output, n_wrt=n_wrt, wrt_mask=wrt_mask)
        mode = jacobian_mode(x.shape[-1], n_out) if n_out is not None else "rev"

    def single(xi):  # (D,) -> (q,), returned twice: the Jacobian's input and the aux output
        h = f(xi.unsqueeze(0)).squeeze(0)
        return h, h

    transform = jacrev if mode == "rev" else jacfwd
    J, h = vmap(transform(single, has_aux=True))(x)  # J: (B, q, D), h: (B, q)
    if n_wrt is not None:
        J = J[..., :n_wrt]
    if wrt_mask is not None:
        J = J * wrt_mask.unsqueeze(1)  # (B, q, D): columns not differentiated are 0
    sq = J.pow(2).flatten(1).sum(-1)  # (B,)
    return (sq, h) if return_output else sq


def _gelu_derivative(m, pre, out):
    if m.approximate != "none":
        return NotImplemented
    return torch.special.ndtr(pre) + pre * torch.exp(-0.5 * pre.square()) * (1 / math.sqrt(2 * math.pi))


#: elementwise activation class -> ``d(module, pre, out)``, its derivative at the
#: pre-activation ``pre`` (``out`` = module(pre)); None: the identity, NotImplemented: a
#: configuration without a closed form here (the torch.func path is used instead)
ACTIVATION_DERIVATIVES: dict[type, Callable] = {
    nn.ReLU: lambda m, pre, out: (pre > 0).to(pre.dtype),
    nn.LeakyReLU: lambda m, pre, out: torch.where(pre > 0, torch.ones_like(pre), torch.full_like(pre, m.negative_slope)),
    nn.Tanh: lambda m, pre, out: 1 - out.square(),
    nn.Sigmoid: lambda m, pre, out: out * (1 - out),
    nn.ELU: lambda m, pre, out: torch.where(pre > 0, torch.ones_like(pre), out + m.alpha),  # alpha e^x = out + alpha
    nn.Softplus: lambda m, pre, out: torch.where(pre * m.beta > m.threshold, torch.ones_like(pre),
                                                 torch.sigmoid(pre * m.beta)),
    nn.GELU: _gelu_derivative,
    nn.Identity: lambda m, pre, out: None,
}


def mlp_layers(f) -> list[nn.Module] | None:
    """The layers of ``f`` if it is an MLP the explicit product handles: an ``nn.Sequential``
    (its own ``forward``) of ``nn.Linear`` layers and not-in-place activations of
    :data:`ACTIVATION_DERIVATIVES`, at least one Linear; else None."""
    if not isinstance(f, nn.Sequential) or type(f).forward is not nn.Sequential.forward:
        return None
    layers = list(f)
    for m in layers:
        if type(m) is nn.Linear:
            continue
        if type(m) not in ACTIVATION_DERIVATIVES or getattr(m, "inplace", False):
            return None
        if type(m) is nn.GELU and m.approximate != "none":
            return None
    return layers if any(type(m) is nn.Linear for m in layers) else None


def mlp_frobenius_sq(layers: list[nn.Module], x: torch.Tensor, *, return_output: bool = False,
                     n_wrt: int | None = None, gram: bool | None = None,
                     wrt_mask: torch.Tensor | None = None):
    """``||J_f(x_b)||_F^2`` per row for an MLP ``f`` (:func:`mlp_layers`), from the explicit
    product ``J = W_L D_{L-1} ... D_1 W_1`` (``D_l = diag f_l'(a_l)``, Rifai et al. 2011, eq. 5
    for one sigmoid layer).

    One forward pass saves every layer's weight and activation derivative; the product is
    then accumulated from the code end, ``A <- A W_l`` (a (B, q, n) batch of matrix
    products) and ``A <- A D_l`` (a column scaling), so every step is a matrix product of
    q rows per sample. The last (first-layer) product is either ``J = A W_1`` or the Gram
    identity ``||A W_1||_F^2 = sum((A G) * A)`` with ``G = W_1 W_1^T`` (H x H, one per
    batch), whichever has fewer multiply-adds (``gram``: None decides, True/False forces).
    Differentiable: gradients reach the weights through the products and the derivatives
    (for ReLU the derivative is piecewise constant: its gradient is 0, as autograd's).

    ``wrt_mask`` (B, n_wrt) bool keeps, per row, only those columns of ``J`` (no Gram identity
    then: its ``G`` is shared by all rows).

    Returns ``(B,)``, and ``f(x)`` (B, q) from the same pass if ``return_output``.
    """
    h, factors = x, []  # factors: ("W", weight (out, in)) or ("d", derivative (B, n)), input to output
    for m in layers:
        if type(m) is nn.Linear:
            h = m(h)
            factors.append(("W", m.weight))
        else:
            pre, h = h, m(h)
            d = ACTIVATION_DERIVATIVES[type(m)](m, pre, h)
            if d is not None:
                factors.append(("d", d))
    n_in = x.shape[-1] if n_wrt is None else n_wrt
    B = len(x)
    stop = 1 if factors[0][0] == "W" and len(factors) > 1 else 0  # keep W_1 for the last product
    A = None  # (B, r, n): Jacobian of the output with respect to the current layer's output
    for kind, t in reversed(factors[stop:]):
        if kind == "W":
            A = t.expand(B, *t.shape) if A is None else A @ t  # (B, r, n_in of the layer)
        else:
            A = torch.diag_embed(t) if A is None else A * t.unsqueeze(1)
    keep = 1 if wrt_mask is None else wrt_mask.unsqueeze(1).to(A.dtype)  # (B, 1, D)
    if stop == 0:  # a single Linear, or activations before the first Linear: A is J itself
        sq = (A[..., :n_in] * keep).square().sum((1, 2))
    else:
        W1 = factors[0][1][:, :n_in]  # (H, D)
        if wrt_mask is not None:
            gram = False
        elif gram is None:
            gram = _gram_is_cheaper(B, A.shape[1], *W1.shape) and not torch.is_autocast_enabled(x.device.type)
        sq = _GramNorm.apply(A, W1) if gram else ((A @ W1) * keep).square().sum((1, 2))  # J = A W_1: (B, q, D)
    return (sq, h) if return_output else sq


def _gram_is_cheaper(B: int, r: int, H: int, D: int) -> bool:
    """Multiply-adds of the training step's first-layer term: ``3 B r H D`` for ``J = A W_1``
    (forward, two backward products), ``2 H^2 D + 2 B r H^2`` for :class:`_GramNorm`."""
    return 2 * H * H * D + 2 * B * r * H * H < 3 * B * r * H * D


class _GramNorm(torch.autograd.Function):
    """``||A_b W||_F^2`` per row b as ``sum((A_b G) * A_b)``, ``G = W W^T``, with a backward
    that reuses the forward's ``A G``: ``d/dA = 2 A G`` (no product), ``d/dW = 2 S W`` with
    ``S = sum_b g_b A_b^T A_b`` (G and S symmetric). First derivatives only."""

    @staticmethod
    def forward(ctx, A, W):  # A: (B, r, H), W: (H, D)
        AG = A @ (W @ W.T)  # (B, r, H)
        ctx.save_for_backward(A, AG, W)
        return (AG * A).sum((1, 2))  # (B,)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):  # g: (B,)
        A, AG, W = ctx.saved_tensors
        gA = gW = None
        if ctx.needs_input_grad[0]:
            gA = AG * (2 * g).view(-1, 1, 1)
        if ctx.needs_input_grad[1]:
            H = A.shape[-1]
            S = (A * g.view(-1, 1, 1)).reshape(-1, H).T @ A.reshape(-1, H)  # (H, H)
            gW = 2 * (S @ W)
        return gA, gW


def contractive_flop_ratio(sizes: list[int], batch_size: int) -> float:
    """Multiply-adds of a contractive training step (exact penalty, :func:`mlp_frobenius_sq`)
    over those of a plain autoencoder step, for an MLP encoder ``sizes = [D, h_1, ..., q]``
    with its mirror as decoder.

    Plain step: forward and backward (twice the forward) of encoder and decoder,
    ``3 * 2 * E - h_1 D`` per sample, ``E = sum_l n_l n_{l-1}`` (no gradient with respect
    to the data). The penalty adds the q rows of
    ``J``: ``q n_l n_{l-1}`` for each product between hidden layers, three times over
    (forward and two backward products), and the first-layer term, ``3 q h_1 D`` or, with
    the Gram identity, ``(2 h_1^2 D) / B + 2 q h_1^2``, whichever :func:`mlp_frobenius_sq`
    picks. About ``1 + q/2`` for a wide first layer: the ratio a compute-bound step
    approaches (elementwise work, Adam and the code layer are not counted, so the measured
    time ratio can fall below it).
    """
    D, q, B = sizes[0], sizes[-1], batch_size
    E = sum(a * b for a, b in pairwise(sizes))
    if len(sizes) == 2:  # a linear encoder: J = W, no products
        return 1.0
    H = sizes[1]
    rest = 3 * q * sum(a * b for a, b in pairwise(sizes[1:-1]))
    first = (2 * H * H * D / B + 2 * q * H * H) if _gram_is_cheaper(B, q, H, D) else 3 * q * H * D
    return 1 + (rest + first) / (3 * 2 * E - H * D)


def hutchinson_samples(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n_projections: int,
                       *, generator: torch.Generator | None = None, n_wrt: int | None = None):
    """``||J_f(x_b)^T v_k||^2`` for ``m = n_projections`` Rademacher probes ``v_k`` per row.

    One forward pass of ``f``, then the ``m`` vector-Jacobian products batched together
    (``torch.func.vjp`` + ``vmap``). Each entry is an unbiased estimate of
    ``||J_f(x_b)||_F^2`` (module docstring: variance ``2 sum_{i != j} (J J^T)_ij^2``).

    Returns
    -------
    samples : Tensor of shape (m, B)
    h : Tensor of shape (B, q), ``f(x)``
    """
    h, pullback = vjp(f, x)  # h: (B, q)
    v = torch.randint(0, 2, (n_projections, *h.shape), generator=generator, device=h.device)
    v = v.to(h.dtype).mul_(2).sub_(1)  # (m, B, q), entries +-1
    (g,) = vmap(pullback)(v)  # (m, B, D): v_k^T J per row
    if n_wrt is not None:  # the data columns only (not an appended missing-value indicator)
        g = g[..., :n_wrt]
    return g.pow(2).flatten(2).sum(-1), h


def hutchinson_frobenius_sq(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                            n_projections: int = 1, return_output: bool = False,
                            generator: torch.Generator | None = None, n_wrt: int | None = None, **_):
    """Unbiased estimate of ``||J_f(x_b)||_F^2`` per row: the mean of ``n_projections``
    Hutchinson probes (:func:`hutchinson_samples`). Same calling convention as
    :func:`jacobian_frobenius_sq` (its ``mode``/``n_out`` are ignored)."""
    samples, h = hutchinson_samples(f, x, n_projections, generator=generator, n_wrt=n_wrt)
    sq = samples.mean(0)  # (B,)
    return (sq, h) if return_output else sq


def _exact(f, x, *, n_projections=None, **kw):
    return jacobian_frobenius_sq(f, x, **kw)


#: ``contractive_estimator`` name -> penalty function ``(f, x, n_out=, n_projections=,
#: return_output=) -> ||J_f||_F^2 (B,) [, f(x)]``
ESTIMATORS: dict[str, Callable] = {"exact": _exact, "hutchinson": hutchinson_frobenius_sq}
