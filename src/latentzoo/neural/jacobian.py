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

``"auto"`` picks the mode with fewer products. The result is an ordinary differentiable
tensor: gradients flow to the encoder's parameters (autograd through the transforms),
so the penalty trains. The transforms work inside ``torch.no_grad()`` too (they ignore
an outer ``no_grad``), so validation and evaluation can call this.

Pass the inner encoder module, not a ``DistributedDataParallel`` wrapper.

References
----------
Rifai, Vincent, Muller, Glorot & Bengio (2011), Contractive auto-encoders: explicit
invariance during feature extraction, ICML (eq. 3 and the sigmoid closed form, eq. 5).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.func import jacfwd, jacrev, vmap

__all__ = ["jacobian_frobenius_sq", "jacobian_mode"]


def jacobian_mode(n_in: int, n_out: int) -> str:
    """The cheaper exact mode: reverse (q VJPs) unless the code is wider than the input."""
    return "fwd" if n_out > n_in else "rev"


def jacobian_frobenius_sq(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                          mode: str = "auto", n_out: int | None = None,
                          return_output: bool = False):
    """``||J_f(x_b)||_F^2`` for every row ``x_b`` of ``x``.

    Parameters
    ----------
    f : callable or torch.nn.Module
        Maps a batch (B, D) to (B, q), row by row (no coupling between rows, e.g. no
        batch normalisation in training mode).
    x : Tensor of shape (B, D)
    mode : {"auto", "rev", "fwd"}
        Reverse or forward mode; ``"auto"`` uses :func:`jacobian_mode` (needs ``n_out``,
        else reverse mode).
    n_out : int, optional
        The code size q, used by ``mode="auto"``.
    return_output : bool
        Also return ``f(x)`` (B, q), computed in the same pass (saves a forward).

    Returns
    -------
    sq_norm : Tensor of shape (B,)
    h : Tensor of shape (B, q), only if ``return_output``
    """
    if mode == "auto":
        mode = jacobian_mode(x.shape[-1], n_out) if n_out is not None else "rev"
    if mode not in ("rev", "fwd"):
        raise ValueError(f"jacobian mode must be 'auto', 'rev' or 'fwd', got {mode!r}")

    def single(xi):  # (D,) -> (q,), returned twice: the Jacobian's input and the aux output
        h = f(xi.unsqueeze(0)).squeeze(0)
        return h, h

    transform = jacrev if mode == "rev" else jacfwd
    J, h = vmap(transform(single, has_aux=True))(x)  # J: (B, q, D), h: (B, q)
    sq = J.pow(2).flatten(1).sum(-1)  # (B,)
    return (sq, h) if return_output else sq
