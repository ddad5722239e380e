"""What one run measures: fit a model on the data its likelihood policy says, score it in
the report's one measure, and flag failed training.

The orchestration (which models, latent dimensions, repeats) calls three functions per
run: :func:`constructor_likelihood` (the decoder a rung gets), :func:`fit_run` (fit on
the right data, a diverged fit kept as a failed run) and :func:`measure_run` (every
metric of :func:`latentzoo.evaluation.evaluate`, the log-likelihood fields of
:func:`score_log_likelihood` and the health flags of :mod:`.health`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .. import evaluation
from ..data.blocks import column_means, is_mapped, map_to_memmap, row_blocks
from .health import RunEvidence, health_flags
from .likelihood_policy import LikelihoodPolicy

__all__ = ["SplitData", "prepare_split", "is_density_model", "constructor_likelihood", "fit_run",
           "score_log_likelihood", "measure_run", "LL_KEYS", "TRAIN_SUBSAMPLE"]

#: the log-likelihood fields of every run (metrics.json layout 2)
LL_KEYS = ("log_likelihood", "bits_per_dim", "log_likelihood_measure", "log_likelihood_method")
#: rows of the training split measured for the overfit flag at most
TRAIN_SUBSAMPLE = 500


@dataclass
class SplitData:
    """The train/held-out split, raw and (where the policy dequantises) dequantised once.

    Every density model of a report is fitted on ``X_train_deq`` and scored on
    ``X_test_deq``: the same uniform draws for all of them.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    X_train_deq: np.ndarray | None = None
    X_test_deq: np.ndarray | None = None


def prepare_split(X_train, X_test, y_train, y_test, policy: LikelihoodPolicy, seed: int) -> SplitData:
    """The split plus its dequantised copies (one uniform draw, seeded by ``seed``)."""
    data = SplitData(X_train, X_test, y_train, y_test)
    if policy.dequantize is not None:
        rng = np.random.default_rng([seed, 0x6465_7175])  # its own stream: the split's seed is reused elsewhere
        deq = policy.dequantize.apply
        if is_mapped(X_train):  # block by block into temporary memory maps (the same draws: rows in order)
            data.X_train_deq = map_to_memmap(lambda b: deq(b, rng), X_train, prefix="dequantised")
            data.X_test_deq = map_to_memmap(lambda b: deq(b, rng), X_test, prefix="dequantised")
        else:
            data.X_train_deq = deq(X_train, rng)
            data.X_test_deq = deq(X_test, rng)
    return data


def is_density_model(model_or_class) -> bool:
    """Models with a log-likelihood (``has_density``: PPCA, VAE); PCA and autoencoders have none."""
    return bool(getattr(model_or_class, "has_density", False))


def constructor_likelihood(cls, policy: LikelihoodPolicy) -> str:
    """The decoder spec of a neural rung: the policy's density likelihood for density models
    (VAEs), the reconstruction likelihood for autoencoders."""
    return policy.likelihood if is_density_model(cls) else policy.autoencoder_likelihood


def _uses_dequantized(model, policy: LikelihoodPolicy) -> bool:
    return is_density_model(model) and policy.dequantizes(getattr(model, "likelihood", None))


def fit_run(model, policy: LikelihoodPolicy, data: SplitData) -> tuple[float, BaseException | None]:
    """Fit ``model`` on the training data its policy says; ``(seconds, error)``.

    A fit that diverges (:class:`~latentzoo.neural.engine.TrainingDiverged`) is returned as
    the error, not raised: the run is reported, flagged ``diverged``, without metrics.
    """
    from ..neural.engine import TrainingDiverged

    X = data.X_train_deq if _uses_dequantized(model, policy) else data.X_train
    t0 = time.perf_counter()
    try:
        model.fit(X)
    except TrainingDiverged as e:
        return time.perf_counter() - t0, e
    return time.perf_counter() - t0, None


def score_log_likelihood(model, policy: LikelihoodPolicy, X, X_deq=None, *, n_importance: int) -> dict:
    """The log-likelihood fields of one model on held-out data, in the report's measure.

    Density models on dequantised data are scored on ``X_deq`` and shifted by
    ``D log(width)`` (so the number bounds the discrete log-probability from below);
    ``bits_per_dim = -log_likelihood / (D ln 2)``. Returns :data:`LL_KEYS` and ``elbo``
    (shifted the same way).
    """
    out = {"log_likelihood": None, "bits_per_dim": None, "log_likelihood_measure": policy.measure,
           "elbo": None}
    if not is_density_model(model):
        out["log_likelihood_method"] = "n/a: no density model"
        return out
    na = policy.not_applicable(getattr(model, "likelihood", None))
    if na is not None:
        out["log_likelihood_method"] = na
        return out
    deq = _uses_dequantized(model, policy)
    Xs = X_deq if deq else X
    d = int(np.shape(Xs)[1])
    shift = policy.dequantize.log_volume(d) if deq else 0.0
    base = evaluation.log_likelihood(model, Xs, n_importance=n_importance)
    ll = base["log_likelihood"] + shift
    out.update(log_likelihood=ll, bits_per_dim=-ll / (d * math.log(2)),
               elbo=None if base["elbo"] is None else base["elbo"] + shift,
               log_likelihood_method=base["log_likelihood_method"] + (", uniform dequantisation" if deq else ""))
    return out


def _mean_kl(model, X) -> float | None:
    if not (model.has_posterior and model.has_density and not model.exact_density):
        return None  # a VAE's posterior (PPCA's is exact and cannot collapse)
    import torch
    from torch import distributions as D

    from ..neural.bounds import kl_or_mc

    with torch.no_grad():
        qz = model.posterior(X)
        q = qz.event_shape[-1]
        pz = D.Independent(D.Normal(torch.zeros(q), torch.ones(q)), 1)
        z = qz.sample((16,))
        return float(kl_or_mc(qz, pz, z).mean())


def _train_twins(model, policy, data: SplitData, seed: int) -> dict:
    """Reconstruction error and log-likelihood (ELBO for VAEs) on a training subsample."""
    idx = np.random.default_rng(seed).permutation(len(data.X_train))[:TRAIN_SUBSAMPLE]
    out = {"reconstruction_error": evaluation.reconstruction_error(model, data.X_train[idx])}
    if is_density_model(model) and policy.not_applicable(getattr(model, "likelihood", None)) is None:
        deq = _uses_dequantized(model, policy)
        Xs = (data.X_train_deq if deq else data.X_train)[idx]
        shift = policy.dequantize.log_volume(Xs.shape[1]) if deq else 0.0
        key = "log_likelihood" if model.exact_density else "elbo"
        fn = model.elbo if key == "elbo" else model.score_samples
        out[key] = float(np.mean(fn(Xs))) + shift
    return out


def failed_metrics(policy: LikelihoodPolicy, error: BaseException) -> dict:
    """The metrics row of a run whose fit failed: every number None, the reason kept."""
    keys = [k for k in evaluation.METRICS if k not in evaluation.FIT_KEYS]
    return {**{k: None for k in keys}, "log_likelihood_measure": policy.measure,
            "log_likelihood_method": f"n/a: the fit failed ({type(error).__name__})",
            "error": f"{type(error).__name__}: {error}", "flags": ["diverged"]}


def measure_run(model, policy: LikelihoodPolicy, data: SplitData, *, n_importance: int, seed: int = 0,
                error: BaseException | None = None) -> dict:
    """Every metric of one fitted run on the held-out split, with ``flags``."""
    if error is not None:
        return failed_metrics(policy, error)
    metrics = evaluation.evaluate(model, data.X_test, data.y_test, data.X_train, data.y_train,
                                  n_importance=n_importance, random_state=seed, with_log_likelihood=False)
    metrics.update(score_log_likelihood(model, policy, data.X_test, data.X_test_deq, n_importance=n_importance))
    X_kl = data.X_test_deq if _uses_dequantized(model, policy) else data.X_test
    # the training mean's held-out error, over the observed entries (as the reconstruction
    # error counts them) when the data have missing values
    centre, _ = column_means(data.X_train)
    baseline = sum(float(np.nansum((b - centre) ** 2)) for _, b in row_blocks(data.X_test, dtype=np.float64)) \
        / len(data.X_test)
    ev = RunEvidence(model, metrics, _train_twins(model, policy, data, seed), int(data.X_test.shape[1]),
                     mean_kl=_mean_kl(model, X_kl), baseline_error=baseline)
    metrics["flags"] = health_flags(ev)
    return metrics
