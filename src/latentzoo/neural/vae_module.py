"""The VAE network in the scvi-tools split: ``inference``, ``generative``, ``loss``.

``inference(x)`` gives the diagonal Gaussian posterior q(z|x) = N(mu(x), diag s(x)^2)
and reparametrised samples ``z = mu + s * eps`` (Kingma & Welling, 2014, Eq. 10);
``generative(z)`` gives the decoder likelihood p(x|z) and the prior p(z) = N(0, I);
``forward(x, epoch)`` returns the :class:`~latentzoo.neural.engine.LossOutput` that the
one training engine minimises. Objectives come from a registry (:data:`OBJECTIVES`).

References
----------
Kingma & Welling (2014), Auto-Encoding Variational Bayes, ICLR.
Higgins et al. (2017), beta-VAE, ICLR.
Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, ICLR.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn

from .bounds import kl_or_mc, log_importance_weights, logmeanexp
from .engine import LossOutput
from .likelihoods import Likelihood

__all__ = ["VAEModule", "OBJECTIVES", "MIN_SCALE", "posterior_scale", "PosteriorFamily", "POSTERIORS",
           "register_posterior"]

#: floor of the posterior scale: s = MIN_SCALE + softplus(raw)
MIN_SCALE = 1e-4


def posterior_scale(raw: torch.Tensor) -> torch.Tensor:
    """Positive posterior scale from the encoder's raw output."""
    return MIN_SCALE + F.softplus(raw)


class PosteriorFamily:
    """q(z|x) from the encoder's raw output (B, 2q): a location and a raw scale per unit.

    ``family(loc, scale)`` is any location-scale ``torch.distributions`` class with
    ``rsample`` (Normal, Laplace, ...); the latent units form one event (``Independent``).
    Families without a closed-form KL against the N(0, I) prior are handled by the
    Monte Carlo KL of :func:`~latentzoo.neural.bounds.kl_or_mc`.
    """

    n_params = 2

    def __init__(self, family: type):
        if not getattr(family, "has_rsample", False):
            raise ValueError(f"posterior family {family.__name__} has no rsample: it cannot be reparametrised")
        self.family = family

    def __call__(self, out: torch.Tensor) -> D.Distribution:
        loc, raw = out.chunk(2, dim=-1)
        return D.Independent(self.family(loc, posterior_scale(raw)), 1)


#: posterior name -> PosteriorFamily; add one with :func:`register_posterior`
POSTERIORS: dict[str, PosteriorFamily] = {}


def register_posterior(name: str, family: type) -> None:
    """Register a location-scale family with ``rsample`` as a VAE posterior (``VAE(posterior=name)``)."""
    POSTERIORS[name] = PosteriorFamily(family)


register_posterior("normal", D.Normal)  # Kingma & Welling's diagonal Gaussian (closed-form KL)
register_posterior("laplace", D.Laplace)  # heavier tails; KL by Monte Carlo


def elbo_loss(module: "VAEModule", x: torch.Tensor, beta: float) -> LossOutput:
    """Negative beta-ELBO, -(E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))), per sample.

    The expectation is the mean over ``n_samples`` reparametrised draws; the KL is in
    closed form (diagonal Normal against N(0, I)) when registered, else Monte Carlo.
    """
    inf = module.inference(x, module.n_samples)
    gen = module.generative(inf["z"])
    rec = -gen["px"].log_prob(x).sum(-1).mean(0)  # (B,)
    kl = kl_or_mc(inf["qz"], gen["pz"], inf["z"])  # (B,)
    loss = rec + beta * kl
    return LossOutput(loss.mean(), module.terms(rec, kl, beta))


def iwae_loss(module: "VAEModule", x: torch.Tensor, beta: float) -> LossOutput:
    """Negative k-sample importance-weighted bound, k = ``n_samples`` (Burda et al., Eq. 8).

    ``-logmeanexp_k [log p(x|z_k) + beta * (log p(z_k) - log q(z_k|x))]``; beta = 1 is
    the IWAE bound, and k = 1 is the ELBO with a one-sample Monte Carlo KL.
    """
    inf = module.inference(x, module.n_samples)
    log_w, log_px_z = log_importance_weights(x, inf["qz"], inf["z"], module.generative, beta)  # (k, B)
    loss = -logmeanexp(log_w, 0)  # (B,)
    rec = -log_px_z.mean(0)
    kl = kl_or_mc(inf["qz"], module.prior(), inf["z"]).detach()
    terms = module.terms(rec.detach(), kl, beta)
    terms["iwae"] = -loss.detach()
    return LossOutput(loss.mean(), terms)


#: objective name -> loss(module, x, beta_t)
OBJECTIVES: dict[str, Callable[["VAEModule", torch.Tensor, float], LossOutput]] = {
    "elbo": elbo_loss,
    "iwae": iwae_loss,
}


class VAEModule(nn.Module):
    """Encoder, decoder and likelihood of a VAE with a N(0, I) prior.

    Parameters
    ----------
    encoder : nn.Module
        (B, D) -> (B, 2q): the posterior location then the raw scale (see :func:`posterior_scale`).
    decoder : nn.Module
        (N, q) -> (N, n_params * D) raw outputs for ``likelihood``.
    likelihood : Likelihood
    n_components : int
        q, the latent dimension.
    beta, n_samples, objective, kl_warmup, posterior :
        As in :class:`~latentzoo.neural.vae.VAE`.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: Likelihood, n_components: int,
                 *, beta: float = 1.0, n_samples: int = 1, objective: str = "elbo", kl_warmup: int = 0,
                 posterior: str = "normal"):
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.posterior_family = POSTERIORS[posterior]
        self.n_components = n_components
        self.beta, self.n_samples, self.objective, self.kl_warmup = beta, n_samples, objective, kl_warmup
        self.register_buffer("_zero", torch.zeros(n_components), persistent=False)

    # ------------------------------------------------------------------ distributions
    def prior(self) -> D.Distribution:
        """p(z) = N(0, I), one event of q dimensions."""
        return D.Independent(D.Normal(self._zero, torch.ones_like(self._zero)), 1)

    def encode(self, x: torch.Tensor) -> D.Distribution:
        """q(z|x), e.g. N(mu(x), diag s(x)^2), batch (B,), event (q,)."""
        return self.posterior_family(self.encoder_output(x))

    def encoder_output(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's raw (B, 2q) output: location then raw scale of every unit."""
        out = self.encoder(x)  # (B, 2q)
        if out.shape[-1] != 2 * self.n_components:
            raise ValueError(
                f"the encoder must output 2 * n_components = {2 * self.n_components} values per row "
                f"(location and raw scale), got {out.shape[-1]}"
            )
        return out

    def inference(self, x: torch.Tensor, n_samples: int = 1) -> dict:
        """``{"qz": q(z|x), "z": (n_samples, B, q) reparametrised samples}``."""
        qz = self.encode(x)
        return {"qz": qz, "z": qz.rsample((n_samples,))}

    def generative(self, z: torch.Tensor) -> dict:
        """``{"px": p(x|z) with batch z.shape[:-1] + (D,), "pz": p(z)}``."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))  # (N, n_params * D): any decoder sees 2-D input
        out = out.reshape(*lead, out.shape[-1])
        return {"px": self.likelihood(out), "pz": self.prior()}

    # ------------------------------------------------------------------ objective
    def beta_at(self, epoch: int) -> float:
        """beta_t = beta * min(1, (epoch + 1) / kl_warmup) (epochs counted from 0); beta if no warm-up."""
        if self.kl_warmup > 0:
            return self.beta * min(1.0, (epoch + 1) / self.kl_warmup)
        return self.beta

    @staticmethod
    def terms(rec: torch.Tensor, kl: torch.Tensor, beta: float) -> dict:
        """Per-sample logged terms: rec = -E log p(x|z), kl, elbo (beta = 1) and beta_t."""
        return {"rec": rec, "kl": kl, "elbo": -(rec + kl), "beta": torch.full_like(rec, beta)}

    def forward(self, x: torch.Tensor, epoch: int = 0) -> LossOutput:
        return OBJECTIVES[self.objective](self, x, self.beta_at(epoch))

    def elbo(self, x: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """The true ELBO (beta = 1) per row: E_q log p(x|z) - KL, in nats."""
        inf = self.inference(x, n_samples)
        rec = self.generative(inf["z"])["px"].log_prob(x).sum(-1).mean(0)
        return rec - kl_or_mc(inf["qz"], self.prior(), inf["z"])

