"""Decoder likelihoods p(x|z) as ``torch.distributions`` objects, from a registry.

A likelihood turns the decoder network's raw output into a distribution over x. The
reconstruction loss of every neural model is ``-px.log_prob(x).sum(-1)``: the Bernoulli
log-probability is the (negative) binary cross-entropy, the fixed-variance Gaussian one
is the squared error up to a constant; there is no "mse"/"bce" switch anywhere.

Register another family with :func:`register_likelihood`; it needs ``n_params``
(decoder outputs per data dimension), ``__call__(out) -> Distribution`` whose
``log_prob`` is elementwise, and the ``support`` of the data it scores (a
``torch.distributions.constraints`` object, checked against the data at ``fit``). Names may carry one numeric argument, e.g. ``"gaussian:0.1"``
(fixed standard deviation 0.1).

Fast path: the registered families return ``torch.distributions`` subclasses (validation
off, the parameters come from the network) with ``log_prob_sum(x)``, the log-density
summed over the last dimension in closed form -- ``-sum BCE-with-logits`` (Bernoulli),
``-sum (x - mu)^2 / (2 sigma^2) - D log(sigma sqrt(2 pi))`` (Gaussian; with the learned
per-entry sigma, ``-sum ((x - mu) / sigma)^2 / 2 - sum log sigma - D log sqrt(2 pi)``),
``-sum |x - mu| / b - D log 2b`` (Laplace) -- which
:func:`~latentzoo.neural.bounds.log_px_given_z` uses: fewer full-size tensor operations
per step than ``log_prob(x).sum(-1)``, the same value (tested).

References
----------
Kingma & Welling (2014), Auto-Encoding Variational Bayes, Appendix C (Bernoulli and
Gaussian MLP decoders).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch.distributions import constraints

from .._spec import accepts, from_spec

__all__ = ["Likelihood", "LIKELIHOODS", "register_likelihood", "make_likelihood", "support_words"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class BernoulliLogits(D.Bernoulli):
    """``torch.distributions.Bernoulli`` from logits with a closed-form summed log-density."""

    def __init__(self, logits: torch.Tensor):
        super().__init__(logits=logits, validate_args=False)  # x in [0, 1] allowed, not only {0, 1}

    def log_prob_sum(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_d log p(x_d)`` over the last dimension: minus the summed BCE with logits."""
        logits, x = torch.broadcast_tensors(self.logits, x)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


class FixedScaleNormal(D.Normal):
    """``torch.distributions.Normal`` with one fixed (float) scale and a closed-form summed log-density."""

    def __init__(self, loc: torch.Tensor, scale: float):
        super().__init__(loc, scale, validate_args=False)
        self._fixed = float(scale)

    def log_prob_sum(self, x: torch.Tensor) -> torch.Tensor:
        s = self._fixed
        sq = (x - self.loc).square().sum(-1)
        return sq * (-0.5 / (s * s)) - self.loc.shape[-1] * (math.log(s) + _HALF_LOG_2PI)


class LearnedScaleNormal(D.Normal):
    """``torch.distributions.Normal`` with the decoder's per-entry scale and a closed-form summed
    log-density ``-sum ((x - mu) / sigma)^2 / 2 - sum log sigma - D log sqrt(2 pi)``."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__(loc, scale, validate_args=False)

    def log_prob_sum(self, x: torch.Tensor) -> torch.Tensor:
        z = x - self.loc
        const = self.loc.shape[-1] * _HALF_LOG_2PI
        if torch.is_grad_enabled() and (z.requires_grad or self.scale.requires_grad):
            z = z / self.scale
            return -(0.5 * z.square() + self.scale.log()).sum(-1) - const
        # no graph (scoring, importance sampling): in place, without full-size temporaries
        return z.div_(self.scale).square_().sum(-1).mul_(-0.5) - self.scale.log().sum(-1) - const


class FixedScaleLaplace(D.Laplace):
    """``torch.distributions.Laplace`` with one fixed (float) scale and a closed-form summed log-density."""

    def __init__(self, loc: torch.Tensor, scale: float):
        super().__init__(loc, scale, validate_args=False)
        self._fixed = float(scale)

    def log_prob_sum(self, x: torch.Tensor) -> torch.Tensor:
        b = self._fixed
        return (x - self.loc).abs().sum(-1) * (-1.0 / b) - self.loc.shape[-1] * math.log(2 * b)


class Likelihood:
    """Base: ``n_params`` decoder outputs per dimension mapped to a distribution.

    ``support`` is the set the data must lie in (a ``torch.distributions.constraints``
    object): by default the distribution family's own ``support``.
    """

    n_params: int = 1
    support: constraints.Constraint = constraints.real

    def __call__(self, out: torch.Tensor) -> D.Distribution:  # out: (B, n_params * D)
        raise NotImplementedError

    def spec(self) -> str:
        """The registry string that builds an equal likelihood (``make_likelihood(spec)``)."""
        return self.name

    def __eq__(self, other) -> bool:  # equal when they build the same distributions
        return type(other) is type(self) and other.spec() == self.spec()

    def __hash__(self) -> int:
        return hash((type(self), self.spec()))

    def __repr__(self) -> str:
        return f"make_likelihood({self.spec()!r})"


class Bernoulli(Likelihood):
    """p(x|z) = prod_i Bernoulli(x_i; sigmoid(logit_i)); x in [0, 1] (grey levels allowed).

    ``log_prob`` is the negative binary cross-entropy, defined for any x in [0, 1]; so the
    data's support is the unit interval, not the distribution's ``{0, 1}``.
    """

    name = "bernoulli"
    support = constraints.unit_interval

    def __call__(self, out):
        return BernoulliLogits(out)  # allows x in [0, 1], not only {0, 1}


class _FixedScale(Likelihood):
    """p(x|z) = prod_i family(x_i; f(z)_i, scale): a location-scale family with a fixed scale."""

    family: type  # a torch.distributions location-scale class, e.g. D.Normal
    fast_family: type  # its subclass with the closed-form log_prob_sum
    scale_word = "scale"

    @property
    def support(self) -> constraints.Constraint:
        return self.family.support

    def __init__(self, scale: float = 1.0):
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"{self.name} likelihood: the {self.scale_word} must be > 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, out):
        # validate_args=False: NaN reaches the engine, which raises TrainingDiverged
        return self.fast_family(out, self.scale)

    def spec(self):
        return f"{self.name}:{self.scale:g}"


class Gaussian(_FixedScale):
    """p(x|z) = N(f(z), sigma^2 I) with a fixed standard deviation ``sigma`` (default 1)."""

    name = "gaussian"
    family = D.Normal
    fast_family = FixedScaleNormal
    scale_word = "standard deviation"


class GaussianLearned(Likelihood):
    """The seed's N(f(z), f~(z) I) with a learned per-dimension variance.

    The decoder outputs a mean and a raw scale per dimension; the scale is
    ``min_scale + softplus(raw)``, positive and bounded away from 0 so the
    log-likelihood cannot run off to +inf on a collapsing variance.
    """

    name = "gaussian-learned"
    n_params = 2

    def __init__(self, min_scale: float = 1e-3):
        if not (min_scale > 0):
            raise ValueError(f"gaussian-learned likelihood: min_scale must be > 0, got {min_scale}")
        self.min_scale = float(min_scale)

    def __call__(self, out):
        loc, raw = out.chunk(2, dim=-1)
        return LearnedScaleNormal(loc, self.min_scale + F.softplus(raw))

    def spec(self):
        return f"gaussian-learned:{self.min_scale:g}"


class Laplace(_FixedScale):
    """p(x|z) = prod_i Laplace(x_i; f(z)_i, b) with a fixed scale ``b`` (default 1): L1 loss."""

    name = "laplace"
    family = D.Laplace
    fast_family = FixedScaleLaplace


LIKELIHOODS: dict[str, Callable[..., Likelihood]] = {}


def register_likelihood(name: str, factory: Callable[..., Likelihood]) -> None:
    """Add a likelihood family; ``factory(*args)`` gets the numbers after ``name:``."""
    LIKELIHOODS[name] = factory


for _cls in (Bernoulli, Gaussian, GaussianLearned, Laplace):
    register_likelihood(_cls.name, _cls)


def make_likelihood(spec) -> Likelihood:
    """A :class:`Likelihood` from an instance or a string ``"name"`` / ``"name:arg"``."""
    return from_spec(spec, registry=LIKELIHOODS, base=Likelihood, kind="likelihood", param="likelihood",
                     example="gaussian:0.1")


#: whether a spec names a registered likelihood with valid arguments (parameter validation)
is_valid_likelihood = accepts(make_likelihood)


def support_words(support: constraints.Constraint) -> str:
    """A constraint in words for error messages: ``[0, 1]``, ``(0, inf)``, ``real numbers``."""
    lo, hi = getattr(support, "lower_bound", None), getattr(support, "upper_bound", None)
    if lo is not None and hi is not None:
        return f"[{lo:g}, {hi:g}]"
    if lo is not None:
        return f"[{lo:g}, inf)" if isinstance(support, constraints.greater_than_eq) else f"({lo:g}, inf)"
    return "real numbers" if support is constraints.real else str(support)
