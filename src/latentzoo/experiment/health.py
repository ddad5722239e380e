"""Health flags of one fitted run: failed training must not pass for a result.

:func:`health_flags` checks a fitted model (and what was measured on it) against five
failure patterns, each a registered :class:`Flag` with a test and an explanation that
the report prints under its table (:data:`FLAG_DESCRIPTIONS`):

* ``posterior-collapse``: a VAE with no active unit (Burda et al. 2016: no latent
  coordinate whose posterior mean varies by more than 0.01 over the data) or a mean
  KL(q(z|x) || p(z)) under 0.01 nats: the decoder ignores z.
* ``not-converged``: the best validation epoch lies in the last tenth of
  ``max_epochs`` (training was still improving when the cap stopped it), or EM stopped
  at ``max_iter``.
* ``diverged``: training raised on a NaN/inf loss, its training loss ended higher
  than at the first epoch, or its held-out reconstruction error is more than
  :data:`DIVERGED_RATIO` times that of the constant reconstruction by the training mean.
* ``overfit``: the held-out reconstruction error exceeds :data:`OVERFIT_RATIO` times the
  training one, or the training log-likelihood (ELBO for VAEs) exceeds the held-out one
  by more than :data:`OVERFIT_NATS_PER_DIM` nats per dimension.
* ``degenerate``: a PPCA whose noise variance is ~0 (below 1e-6 of the mean data
  variance), e.g. ``n_components >= n_samples - 1``: its density is singular.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Flag", "FLAGS", "FLAG_DESCRIPTIONS", "health_flags", "RunEvidence", "OVERFIT_RATIO",
           "OVERFIT_NATS_PER_DIM", "COLLAPSE_KL", "NOT_CONVERGED_TAIL", "DIVERGED_RATIO"]

#: held-out / training reconstruction error above this ratio is overfitting
OVERFIT_RATIO = 1.5
#: training minus held-out log-likelihood above this many nats per dimension is overfitting
OVERFIT_NATS_PER_DIM = 0.1
#: mean KL(q || p) below this (nats) is a collapsed posterior
COLLAPSE_KL = 0.01
#: reconstruction error above this multiple of the training-mean baseline: diverged
DIVERGED_RATIO = 10.0
#: the best epoch in this last fraction of max_epochs: not converged
NOT_CONVERGED_TAIL = 0.1


@dataclass
class RunEvidence:
    """What the flags look at: the fitted model, its held-out metrics and training-split twins.

    ``train`` holds ``reconstruction_error`` and ``log_likelihood`` (or ``elbo``) measured
    on (a subsample of) the training split the same way as ``metrics`` on the held-out one.
    ``baseline_error`` is the held-out reconstruction error of the training mean (every
    point reconstructed by it); ``error`` the exception that stopped the fit, if any.
    """

    model: object
    metrics: dict
    train: dict
    n_features: int
    mean_kl: float | None = None
    error: BaseException | None = None
    baseline_error: float | None = None


@dataclass(frozen=True)
class Flag:
    name: str
    test: Callable[[RunEvidence], bool]
    description: str


def _history(ev: RunEvidence) -> dict | None:
    h = getattr(ev.model, "history_", None)
    return h if isinstance(h, dict) else None


def _collapsed(ev: RunEvidence) -> bool:
    model = ev.model
    if ev.error is not None or not (model.has_posterior and model.has_density and not model.exact_density):
        return False  # a VAE: PPCA's exact posterior does not collapse, the others have none
    au = ev.metrics.get("active_units")
    return (au is not None and au == 0) or (ev.mean_kl is not None and ev.mean_kl < COLLAPSE_KL)


def _not_converged(ev: RunEvidence) -> bool:
    if ev.error is not None:
        return False
    h = _history(ev)
    max_epochs = getattr(ev.model, "max_epochs", None)
    if h is not None and max_epochs and h.get("best_epoch"):
        return int(h["best_epoch"]) > (1 - NOT_CONVERGED_TAIL) * int(max_epochs)
    n_iter, max_iter = getattr(ev.model, "n_iter_", None), getattr(ev.model, "max_iter", None)
    if getattr(ev.model, "method", None) == "em" and n_iter is not None and max_iter:
        return int(n_iter) >= int(max_iter)
    return False


def _diverged(ev: RunEvidence) -> bool:
    from ..neural.engine import TrainingDiverged

    if isinstance(ev.error, TrainingDiverged):
        return True
    if ev.error is not None:
        return False
    rec = ev.metrics.get("reconstruction_error")
    if rec is not None and ev.baseline_error is not None and not rec <= DIVERGED_RATIO * ev.baseline_error:
        return True
    h = _history(ev)
    if h is None:
        return False
    # the training objective (not the validation loss, which rises when a model overfits); the
    # beta = 1 ELBO where logged, since a KL warm-up raises the loss itself as beta grows
    elbo = h.get("train_elbo")
    loss = -np.asarray(elbo, dtype=np.float64) if elbo else np.asarray(h.get("train_loss") or [], dtype=np.float64)
    return len(loss) >= 2 and (not np.isfinite(loss[-1]) or loss[-1] > loss[0])


def _overfit(ev: RunEvidence) -> bool:
    if ev.error is not None:
        return False
    rec_te, rec_tr = ev.metrics.get("reconstruction_error"), ev.train.get("reconstruction_error")
    if rec_te is not None and rec_tr is not None and rec_tr > 0 and rec_te > OVERFIT_RATIO * rec_tr:
        return True
    for key in ("log_likelihood", "elbo"):
        te, tr = ev.metrics.get(key), ev.train.get(key)
        if te is not None and tr is not None:
            return (tr - te) / ev.n_features > OVERFIT_NATS_PER_DIM
    return False


def _degenerate(ev: RunEvidence) -> bool:
    s2 = getattr(ev.model, "noise_variance_", None)
    ev_ = getattr(ev.model, "explained_variance_", None)
    if ev.error is not None or s2 is None or ev_ is None:
        return False
    d = ev.n_features
    mean_var = (float(np.sum(ev_)) + (d - len(ev_)) * float(s2)) / d  # trace(S) / d
    # PPCA's own degenerate_ (n_components >= n_samples - 1), or a noise variance ~0 on data on a subspace
    return float(s2) <= 1e-6 * mean_var or bool(getattr(ev.model, "degenerate_", False))


#: every flag, in the order shown
FLAGS: list[Flag] = [
    Flag("posterior-collapse", _collapsed,
         "the VAE's posterior equals the prior (no active latent unit, or mean KL(q(z|x) || p(z)) under "
         f"{COLLAPSE_KL} nats): the decoder ignores z and its samples are all alike. Try a smaller beta "
         "(--param vae.beta=0.5), a KL warm-up (--param vae.kl_warmup=20), a weaker decoder or more epochs."),
    Flag("not-converged", _not_converged,
         f"the best validation epoch is in the last {NOT_CONVERGED_TAIL:.0%} of max_epochs (or EM stopped at "
         "max_iter): the model was still improving when training stopped. Try more --epochs or a larger lr."),
    Flag("diverged", _diverged,
         "training produced a NaN/inf loss, ended with a higher training loss than its first epoch, or reconstructs "
         f"held-out data more than {DIVERGED_RATIO:g}x worse than their mean does: its numbers are not a trained "
         "model's. Try a smaller learning rate (--param MODEL.lr=1e-4) or rescaled data."),
    Flag("overfit", _overfit,
         f"held-out reconstruction error above {OVERFIT_RATIO}x the training one, or training log-likelihood "
         f"(ELBO for VAEs) above the held-out one by more than {OVERFIT_NATS_PER_DIM} nats per dimension: the "
         "model memorises its training split. Try fewer parameters (--hidden, --latent-dim), early stopping "
         "(patience) or more data."),
    Flag("degenerate", _degenerate,
         "PPCA's noise variance is ~0 (n_components >= n_samples - 1, or data on a subspace): its density is "
         "singular and its log-likelihood meaningless. Use fewer components than samples minus one."),
]

#: flag name -> explanation (metrics.json's ``flag_descriptions``, printed under the table)
FLAG_DESCRIPTIONS: dict[str, str] = {f.name: f.description for f in FLAGS}


def health_flags(ev: RunEvidence) -> list[str]:
    """Names of the :data:`FLAGS` raised for one run, in their order."""
    return [f.name for f in FLAGS if f.test(ev)]
