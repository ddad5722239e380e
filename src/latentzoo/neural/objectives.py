"""Variational objectives of the VAE, from a registry: each maps one :class:`Bound` to a loss.

:meth:`~latentzoo.neural.vae_module.VAEModule.loss` is the one place the objective is
computed: it evaluates ``log p(x|z)`` of what ``inference`` and ``generative`` produced
(once per step) into a :class:`Bound`, and the objective named by ``VAE(objective=...)``
turns that into a :class:`~latentzoo.neural.engine.LossOutput`. Add one with
:func:`register_objective`.

References
----------
Kingma & Welling (2014), Auto-Encoding Variational Bayes, ICLR (Eq. 10).
Higgins et al. (2017), beta-VAE, ICLR.
Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, ICLR (Eq. 8).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch
from torch import distributions as D

from .bounds import kl_or_mc, log_importance_weights, logmeanexp
from .engine import LossOutput

__all__ = ["Bound", "OBJECTIVES", "register_objective", "elbo_objective", "iwae_objective"]


@dataclass
class Bound:
    """What a variational objective is made of, for L draws ``z_l ~ q(z|x)`` of B rows.

    Attributes
    ----------
    log_px_z : Tensor (L, B)
        ``log p(x|z_l)`` summed over the (observed) dimensions.
    qz, pz : torch.distributions.Distribution
        q(z|x) with batch (B,) and the prior p(z), latent units one event.
    z : Tensor (L, B, q)
        The reparametrised draws.
    """

    log_px_z: torch.Tensor
    qz: D.Distribution
    pz: D.Distribution
    z: torch.Tensor

    @cached_property
    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per row (B,): closed form where registered, else Monte Carlo at ``z``."""
        return kl_or_mc(self.qz, self.pz, self.z)

    def log_weights(self, kl_weight: float = 1.0) -> torch.Tensor:
        """``log p(x|z_l) + kl_weight * (log p(z_l) - log q(z_l|x))``, (L, B)."""
        return log_importance_weights(self.log_px_z, self.qz, self.pz, self.z, kl_weight)


def elbo_objective(bound: Bound, kl_weight: float) -> LossOutput:
    """Negative beta-ELBO per row: ``-(E_q[log p(x|z)] - kl_weight * KL(q(z|x) || p(z)))``.

    The expectation is the mean over the L draws; the KL is in closed form where
    ``torch.distributions`` registers one (Normal or Laplace posterior against the
    N(0, I) prior), else the Monte Carlo estimate at the same draws.
    Terms: ``rec = -E_q log p(x|z)``, ``kl``, and ``elbo = -(rec + kl)`` (beta = 1).
    """
    log_px_z = bound.log_px_z
    rec = -(log_px_z[0] if len(log_px_z) == 1 else log_px_z.mean(0))  # (B,); one draw: no mean pass
    kl = bound.kl  # (B,)
    loss = rec + kl if kl_weight == 1 else rec + kl_weight * kl
    with torch.no_grad():  # a logged term: no graph for it
        elbo = -(rec + kl)
    return LossOutput(loss.mean(), {"rec": rec, "kl": kl, "elbo": elbo})


def iwae_objective(bound: Bound, kl_weight: float) -> LossOutput:
    """Negative importance-weighted bound over the L = k draws (Burda et al., 2016, Eq. 8).

    ``-logmeanexp_k [log p(x|z_k) + kl_weight * (log p(z_k) - log q(z_k|x))]``; with
    ``kl_weight = 1`` the IWAE_k bound, and with k = 1 the ELBO with a one-draw Monte Carlo
    KL. The logged ``rec``, ``kl`` and ``elbo`` (detached) are those of the ELBO at the same
    draws, and ``iwae`` is the bound itself.
    """
    iwae = logmeanexp(bound.log_weights(kl_weight), 0)  # (B,)
    with torch.no_grad():  # logged terms: no graph for them
        rec = -bound.log_px_z.mean(0)
        kl = bound.kl
    return LossOutput(-iwae.mean(), {"rec": rec, "kl": kl, "elbo": -(rec + kl), "iwae": iwae.detach()})


#: objective name -> objective(bound, kl_weight) -> LossOutput; add one with :func:`register_objective`
OBJECTIVES: dict[str, Callable[[Bound, float], LossOutput]] = {}


def register_objective(name: str, objective: Callable[[Bound, float], LossOutput]) -> None:
    """Register ``objective(bound, kl_weight) -> LossOutput`` as ``VAE(objective=name)``."""
    OBJECTIVES[name] = objective


register_objective("elbo", elbo_objective)
register_objective("iwae", iwae_objective)
