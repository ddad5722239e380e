"""The VAE network in the scvi-tools split: ``inference``, ``generative``, ``loss``.

``inference(x)`` gives the diagonal Gaussian posterior q(z|x) = N(mu(x), diag s(x)^2)
and reparametrised samples ``z = mu + s * eps`` (Kingma & Welling, 2014, Eq. 10);
``generative(z)`` gives the decoder likelihood p(x|z) and the prior p(z) = N(0, I);
``loss(x, inference_out, generative_out, kl_weight)`` is the one place the objective is
computed (training, validation and :meth:`VAEModule.elbo` all call it), with the
objective from a registry (:data:`~latentzoo.neural.objectives.OBJECTIVES`).
``forward(x, kl_weight)`` runs the three once and returns the
:class:`~latentzoo.neural.engine.LossOutput` that the one training engine minimises; the
KL weight of each epoch (a warm-up) is a schedule of the engine, not of the network.

Fast path, same vocabulary: the posterior and the prior stay ``torch.distributions``
objects, built with ``validate_args=False`` (their parameters are valid by
construction: the scale is ``MIN_SCALE + softplus``), and the prior is a
:class:`StandardNormal` whose ``log_prob`` and KL against it (registered with
``torch.distributions.register_kl``) are the closed forms
``-1/2 (||z||^2 + q log 2pi)`` and ``1/2 sum(mu^2 + s^2 - 1) - sum log s``
(Kingma & Welling 2014, appendix B), a handful of tensor operations per step.

References
----------
Kingma & Welling (2014), Auto-Encoding Variational Bayes, ICLR.
Higgins et al. (2017), beta-VAE, ICLR.
Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, ICLR.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn

from .bounds import log_px_given_z
from .engine import LossOutput
from .likelihoods import Likelihood
from .missing import MissingInput
from .objectives import OBJECTIVES, Bound

__all__ = ["VAEModule", "OBJECTIVES", "MIN_SCALE", "posterior_scale", "PosteriorFamily", "POSTERIORS",
           "register_posterior", "StandardNormal"]  # OBJECTIVES: re-exported from .objectives

_LOG_2PI = math.log(2 * math.pi)

#: floor of the posterior scale: s = MIN_SCALE + softplus(raw)
MIN_SCALE = 1e-4


def posterior_scale(raw: torch.Tensor) -> torch.Tensor:
    """Positive posterior scale from the encoder's raw output."""
    return MIN_SCALE + F.softplus(raw)


class PosteriorFamily:
    """q(z|x) from the encoder's raw output (B, 2q): a location and a raw scale per unit.

    ``family(loc, scale)`` is any location-scale ``torch.distributions`` class with
    ``rsample`` (Normal, Laplace, ...); the latent units form one event (``Independent``).
    The KL against the N(0, I) prior is in closed form where ``torch.distributions``
    registers one (Normal; Laplace, ``kl._kl_laplace_normal``); other families (e.g. a
    Student t) get the Monte Carlo KL of :func:`~latentzoo.neural.bounds.kl_or_mc`.
    """

    n_params = 2

    def __init__(self, family: type):
        if not getattr(family, "has_rsample", False):
            raise ValueError(f"posterior family {family.__name__} has no rsample: it cannot be reparametrised")
        self.family = family

    def __call__(self, out: torch.Tensor) -> D.Distribution:
        loc, raw = out.chunk(2, dim=-1)
        # valid by construction (scale >= MIN_SCALE): no argument checks in the hot loop;
        # a NaN from the network reaches the engine, which raises TrainingDiverged
        return D.Independent(self.family(loc, posterior_scale(raw), validate_args=False), 1, validate_args=False)


class StandardNormal(D.Independent):
    """The prior p(z) = N(0, I_q), one event of q dimensions, with closed-form fast paths.

    An ordinary ``torch.distributions`` object (``Independent(Normal(0, 1), 1)``: sample,
    rsample, mean, entropy, ...) whose ``log_prob`` is ``-1/2 (||z||^2 + q log 2pi)``,
    and whose KL from a diagonal-Normal posterior is registered in closed form.
    """

    def __init__(self, zero: torch.Tensor, one: torch.Tensor):
        super().__init__(D.Normal(zero, one, validate_args=False), 1, validate_args=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z.square().sum(-1) + z.shape[-1] * _LOG_2PI)


@D.register_kl(D.Independent, StandardNormal)
def _kl_to_standard_normal(q: D.Independent, p: StandardNormal) -> torch.Tensor:
    """KL(q || N(0, I)) per row: closed form for a diagonal Normal q, else the registered
    KL of the base distributions summed over the event (Laplace: ``kl._kl_laplace_normal``)."""
    if q.reinterpreted_batch_ndims != 1:
        raise NotImplementedError
    base = q.base_dist
    if type(base) is D.Normal:
        loc, scale = base.loc, base.scale
        return 0.5 * (loc.square() + scale.square() - 1).sum(-1) - scale.log().sum(-1)
    return D.kl_divergence(base, p.base_dist).sum(-1)


#: posterior name -> PosteriorFamily; add one with :func:`register_posterior`
POSTERIORS: dict[str, PosteriorFamily] = {}


def register_posterior(name: str, family: type) -> None:
    """Register a location-scale family with ``rsample`` as a VAE posterior
    (``VAE(posterior_family=name)``); ``family(loc, scale)`` must build the distribution."""
    POSTERIORS[name] = PosteriorFamily(family)


register_posterior("normal", D.Normal)  # Kingma & Welling's diagonal Gaussian (closed-form KL)
register_posterior("laplace", D.Laplace)  # heavier tails; closed-form KL against N(0, I) too


class VAEModule(nn.Module):
    """Encoder, decoder and likelihood of a VAE with a N(0, I) prior.

    Parameters
    ----------
    encoder : nn.Module
        (B, D) -> (B, 2q): the posterior location then the raw scale (see :func:`posterior_scale`).
    decoder : nn.Module
        (N, q) -> (N, n_params * D) raw outputs for ``likelihood``.
    likelihood : Likelihood
        p(x|z), resolved once at ``fit`` (``module_.likelihood``).
    n_components : int
        q, the latent dimension.
    n_particles : int
        Posterior draws per row in the training objective (k for IWAE).
    objective, posterior :
        As ``objective`` and ``posterior_family`` of :class:`~latentzoo.neural.vae.VAE`.
    inputs : MissingInput
        Missing entries (NaN): the mask, the fill values and the encoder's input.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: Likelihood, n_components: int,
                 *, n_particles: int = 1, objective: str = "elbo", posterior: str = "normal",
                 inputs: MissingInput):
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.posterior_family = POSTERIORS[posterior]
        self.n_components = n_components
        self.n_particles, self.objective = n_particles, objective
        self.register_buffer("_zero", torch.zeros(n_components), persistent=False)
        self.inputs = inputs  # missing entries: mask, fill, encoder input
        self.register_buffer("_one", torch.ones(n_components), persistent=False)

    # ------------------------------------------------------------------ distributions
    def prior(self) -> D.Distribution:
        """p(z) = N(0, I), one event of q dimensions (:class:`StandardNormal`)."""
        return StandardNormal(self._zero, self._one)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> D.Distribution:
        """q(z|x), e.g. N(mu(x), diag s(x)^2), batch (B,), event (q,) (see :meth:`encoder_output`)."""
        return self.posterior_family(self.encoder_output(x, mask))

    def encoder_output(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's raw (B, 2q) output: location then raw scale of every unit.

        ``x`` may hold NaN for missing entries (filled here by ``inputs``), or come
        already filled with its ``mask`` (True where observed)."""
        if mask is None:
            x, mask = self.inputs.maybe_split(x)
        out = self.encoder(self.inputs.encoder_input(x, mask))  # (B, 2q)
        if out.shape[-1] != 2 * self.n_components:
            raise ValueError(
                f"the encoder must output 2 * n_components = {2 * self.n_components} values per row "
                f"(location and raw scale), got {out.shape[-1]}"
            )
        return out

    def inference(self, x: torch.Tensor, n_particles: int = 1, mask: torch.Tensor | None = None) -> dict:
        """``{"qz": q(z|x), "z": (n_particles, B, q) reparametrised samples}``."""
        qz = self.encode(x, mask)
        return {"qz": qz, "z": qz.rsample((n_particles,))}

    def generative(self, z: torch.Tensor) -> dict:
        """``{"px": p(x|z) with batch z.shape[:-1] + (D,), "pz": p(z)}``."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))  # (N, n_params * D): any decoder sees 2-D input
        out = out.reshape(*lead, out.shape[-1])
        return {"px": self.likelihood(out), "pz": self.prior()}

    # ------------------------------------------------------------------ objective
    def loss(self, x: torch.Tensor, inference_out: dict, generative_out: dict, kl_weight: float = 1.0, *,
             mask: torch.Tensor | None = None, objective: str | None = None) -> LossOutput:
        """The objective, computed once from what ``inference`` and ``generative`` gave.

        Parameters
        ----------
        x : Tensor (B, D)
        inference_out : dict
            ``inference(x, L)``: ``qz`` and the draws ``z`` (L, B, q).
        generative_out : dict
            ``generative(z)``: ``px`` with batch (L, B, D) and ``pz``.
        kl_weight : float, default=1.0
            beta_t, the weight of the KL (or of ``log p(z) - log q(z|x)`` for IWAE).
        mask : Tensor (B, D) of bool, optional
            Observed entries: the likelihood term sums ``log p(x_d|z)`` over them only
            (:func:`~latentzoo.neural.bounds.log_px_given_z`); None: all observed.
        objective : str, optional
            A key of :data:`~latentzoo.neural.objectives.OBJECTIVES`; default the module's.

        Returns
        -------
        LossOutput
            The batch mean to minimise and per-row terms (``rec``, ``kl``, ``elbo``, ...).
        """
        bound = Bound(log_px_given_z(x, generative_out["px"], mask), inference_out["qz"], generative_out["pz"],
                      inference_out["z"])
        return OBJECTIVES[objective or self.objective](bound, kl_weight)

    def forward(self, x: torch.Tensor, kl_weight: float = 1.0) -> LossOutput:
        """The training objective at KL weight ``kl_weight`` (the engine's per-epoch schedule).

        NaN entries of ``x`` are missing: the encoder sees them filled and the likelihood
        term covers the observed entries only, so the ELBO / IWAE bound is the MIWAE bound
        (Mattei & Frellsen 2019, eq. 4)."""
        x, mask = self.inputs.maybe_split(x)  # (B, D) filled, True where observed (None: all)
        inf = self.inference(x, self.n_particles, mask)
        return self.loss(x, inf, self.generative(inf["z"]), kl_weight, mask=mask)

    def elbo(self, x: torch.Tensor, n_draws: int = 1) -> torch.Tensor:
        """The true ELBO (beta = 1) per row, nats: E_q log p(x|z) (mean of ``n_draws``) - KL;
        rows with NaN: the bound on ``log p(x_obs)``."""
        x, mask = self.inputs.split(x)
        inf = self.inference(x, n_draws, mask)
        return self.loss(x, inf, self.generative(inf["z"]), 1.0, mask=mask, objective="elbo").terms["elbo"]
