"""One measure for every log-likelihood of a comparison: which likelihood, on which data.

A comparison ranks models by held-out log-likelihood only if every number is the
log-probability (or log-density) of the same data under the same measure.
:func:`resolve_policy` looks at the data once and decides, for the whole report:

* **binary** data ({0, 1}): Bernoulli decoders, whose log p(x) is a log-probability of
  the binary vectors; continuous-density models (PPCA, or a VAE given a Gaussian
  decoder) are fitted and scored on uniformly dequantised data, which puts them on the
  same footing (below).
* **discrete levels** (uint8 images, counts, the digits' 17 grey levels, any values on a
  grid ``lo + k * width``): uniform dequantisation for every density model,
  ``y = x + width * (u - 1/2)``, ``u ~ U[0, 1)^D``, one draw shared by all models (the
  training split to fit, the held-out split to score); the VAEs get the learned-variance
  Gaussian decoder. For any density ``p`` of ``y`` (Jensen's inequality over the cell)

      log P(x) = log int_cell(x) p(y) dy >= E_u[log p(x + width (u - 1/2))] + D log(width)

  so the reported number, ``E_u log p(y) + D log width``, is a lower bound on the
  log-probability of the discrete data (Theis, van den Oord & Bethge 2016, Sec. 3.1),
  in nats per sample and in bits per dimension.
* **continuous** data: the seed's learned-variance Gaussian decoder N(f(z), f~(z) I) for
  the VAEs, so PPCA (its linear special case) and the VAE are the same family and every
  number is a log-density in R^D.

A decoder whose distribution is discrete (Bernoulli) on data that are not binary is
never presented as a log-likelihood: its row says ``n/a`` with the reason (torch's
``ContinuousBernoulli`` is the normalised alternative for data in [0, 1]).

References
----------
Theis, van den Oord & Bethge (2016), A note on the evaluation of generative models, ICLR.
Uria, Murray & Larochelle (2013), RNADE: the real-valued neural autoregressive density
estimator, NeurIPS (uniform dequantisation of discrete pixel data).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Dequantization", "LikelihoodPolicy", "data_kind", "resolve_policy", "is_discrete_likelihood",
           "MAX_LEVELS"]

#: data with more grid levels than this are treated as continuous
MAX_LEVELS = 65536
#: at most this many distinct values are inspected for a grid (more: continuous)
_MAX_DISTINCT = 4096


@dataclass(frozen=True)
class Dequantization:
    """Uniform dequantisation ``y = x + width * (u - 1/2)`` of data on a grid of ``levels`` values."""

    levels: int
    width: float

    def apply(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One dequantised copy of ``X`` (float32; NaN stays NaN)."""
        u = rng.random(X.shape, dtype=np.float64)
        return (np.asarray(X, dtype=np.float64) + self.width * (u - 0.5)).astype(np.float32)

    def log_volume(self, n_features: int) -> float:
        """``D log(width)``: converts a log-density of ``y`` to the discrete log-probability bound."""
        return n_features * math.log(self.width)


def _grid(values: np.ndarray) -> tuple[int, float] | None:
    """``(levels, width)`` when the sorted distinct ``values`` lie on ``lo + k * width``."""
    if len(values) < 2:
        return None
    width = float(np.min(np.diff(values)))
    if not (width > 0):
        return None
    k = (values - values[0]) / width
    if np.max(np.abs(k - np.round(k))) > 1e-3:
        return None
    levels = int(round(float(k[-1]))) + 1
    return (levels, width) if levels <= MAX_LEVELS else None


def data_kind(X) -> tuple[str, Dequantization | None]:
    """``("binary" | "discrete" | "continuous", dequantisation or None)`` of the data ``X``.

    Binary: every (non-missing) value is 0 or 1. Discrete: at most a few thousand
    distinct values, all on one grid ``lo + k * width`` (their smallest gap) with at most
    :data:`MAX_LEVELS` levels, and values repeat (fewer distinct values than half the
    entries). Anything else is continuous.
    """
    if isinstance(X, np.memmap):  # block by block, never read whole
        distinct, size = _mapped_distinct(X)
    else:
        X = np.asarray(X)
        v = X[np.isfinite(X)] if np.issubdtype(X.dtype, np.floating) else X.ravel()
        size = v.size
        # distinct values, stopping early on data that are clearly continuous
        sample = v if v.size <= 200_000 else np.random.default_rng(0).choice(v, 200_000, replace=False)
        distinct = np.unique(sample)
        if len(distinct) <= _MAX_DISTINCT:
            distinct = np.unique(v)
    if size == 0 or distinct is None or len(distinct) > _MAX_DISTINCT or len(distinct) > max(2, size // 2):
        return "continuous", None
    distinct = distinct.astype(np.float64)
    if np.all(np.isin(distinct, (0.0, 1.0))):
        return "binary", Dequantization(2, 1.0)
    grid = _grid(distinct)
    if grid is None:
        return "continuous", None
    return "discrete", Dequantization(*grid)


def _mapped_distinct(X) -> tuple[np.ndarray | None, int]:
    """``(distinct finite values, or None past _MAX_DISTINCT; count of finite values)`` of a memory map."""
    from ..data.blocks import row_blocks

    distinct, size = np.empty(0), 0
    for _, b in row_blocks(X):
        v = b[np.isfinite(b)] if np.issubdtype(b.dtype, np.floating) else b.ravel()
        size += v.size
        distinct = np.union1d(distinct, v)
        if len(distinct) > _MAX_DISTINCT:
            return None, size
    return distinct, size


def is_discrete_likelihood(spec) -> bool:
    """Whether the registered likelihood ``spec`` is a distribution over discrete values
    (its torch ``support`` is not a real interval), e.g. Bernoulli."""
    import torch
    from torch.distributions import constraints

    from ..neural.likelihoods import make_likelihood

    lik = make_likelihood(spec)
    dist = lik(torch.zeros(1, lik.n_params))
    return bool(getattr(dist.support, "is_discrete", False)) or dist.support is constraints.boolean


@dataclass(frozen=True)
class LikelihoodPolicy:
    """The report's one measure: the likelihood given to the density rungs, and how PPCA
    and the VAEs are put on the same footing.

    Attributes
    ----------
    policy : {"auto", "user"}
    data_kind : {"binary", "discrete", "continuous"}
    likelihood : str
        The decoder spec of the VAEs (the density rungs).
    autoencoder_likelihood : str
        The reconstruction likelihood of the autoencoders (not density models: it is a loss).
    dequantize : Dequantization or None
        Applied to the data of every continuous-density model (PPCA, VAEs with a density
        decoder) when the data are binary or discrete.
    measure : str
        One sentence naming the measure every log-likelihood of the report is in.
    reason : str
        Why this policy (shown in the report's setup).
    """

    policy: str
    data_kind: str
    likelihood: str
    autoencoder_likelihood: str
    dequantize: Dequantization | None
    measure: str
    reason: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d["dequantize"] = None if self.dequantize is None else asdict(self.dequantize)
        return d

    def dequantizes(self, likelihood_spec=None) -> bool:
        """Whether a density model with this decoder (None: PPCA, a Gaussian density) is
        fitted and scored on dequantised data."""
        if self.dequantize is None:
            return False
        return likelihood_spec is None or not is_discrete_likelihood(likelihood_spec)

    def not_applicable(self, likelihood_spec) -> str | None:
        """The reason a decoder's log-likelihood is not in this report's measure, or None."""
        if likelihood_spec is not None and self.data_kind != "binary" and is_discrete_likelihood(likelihood_spec):
            return (f"n/a: a {likelihood_spec} decoder on {self.data_kind} (non-binary) data is not a normalised "
                    "probability of those data")
        return None


def _measure(kind: str, deq: Dequantization | None) -> str:
    if kind == "continuous":
        return "log-density of x in R^D (nats per sample)"
    if kind == "binary":
        return ("log-probability of the binary vectors (nats per sample); continuous densities by uniform "
                "dequantisation, a lower bound")
    return (f"log-probability of the discrete values (grid width {deq.width:.4g}, {deq.levels} levels; nats "
            "per sample): uniform-dequantisation lower bound")


def resolve_policy(X, likelihood: str = "auto") -> LikelihoodPolicy:
    """The likelihood policy for data ``X``: ``"auto"`` (see the module) or a registered spec.

    With a user spec every neural rung gets it; the data kind still decides the measure
    (dequantisation of densities on discrete data). Raises ``ValueError`` for an unknown
    spec, and for a [0, 1] likelihood (Bernoulli) on data outside [0, 1].
    """
    import torch

    from ..neural.likelihoods import LIKELIHOODS, is_valid_likelihood, make_likelihood, support_words

    kind, deq = data_kind(X)
    lo, hi = (float(np.nanmin(X)), float(np.nanmax(X))) if np.size(X) else (0.0, 0.0)
    in_unit = lo >= 0.0 and hi <= 1.0
    measure = _measure(kind, deq)
    if likelihood != "auto":
        if not is_valid_likelihood(likelihood):
            raise ValueError(f"likelihood {likelihood!r} is not a registered likelihood spec; known: "
                             f"{', '.join(LIKELIHOODS)} (e.g. 'gaussian:0.1'), or 'auto'")
        support = make_likelihood(likelihood).support
        if not bool(support.check(torch.tensor([lo, hi], dtype=torch.float64)).all()):
            raise ValueError(f"likelihood {likelihood!r} needs data in {support_words(support)}, but the data "
                             f"range over [{lo:.4g}, {hi:.4g}]; use 'auto' or a Gaussian likelihood")
        return LikelihoodPolicy("user", kind, likelihood, likelihood, deq, measure,
                                f"--likelihood {likelihood} for every neural rung ({kind} data)")
    ae = "bernoulli" if in_unit else "gaussian"
    if kind == "binary":
        return LikelihoodPolicy("auto", kind, "bernoulli", "bernoulli", deq, measure,
                                "binary data ({0, 1}): Bernoulli decoders; PPCA on uniformly dequantised data "
                                "(x + u - 1/2)")
    if kind == "discrete":
        return LikelihoodPolicy("auto", kind, "gaussian-learned", ae, deq, measure,
                                f"discrete data ({deq.levels} levels {deq.width:.4g} apart): every density model "
                                "(PPCA, VAEs with a learned-variance Gaussian decoder) fitted and scored on "
                                "uniformly dequantised data")
    return LikelihoodPolicy("auto", kind, "gaussian-learned", ae, None, measure,
                            f"continuous data (observed range [{lo:.3g}, {hi:.3g}]): learned-variance Gaussian "
                            "decoder N(f(z), f~(z) I) for the VAEs, of which PPCA is the linear special case")
