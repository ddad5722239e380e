"""One run of the plan: fit one model at one latent dimension on one split, and measure it.

:func:`execute` is the unit every backend runs (in this process, in a worker process, on
a Dask worker): it takes a :class:`~.plan.RunTask`, the split and the data, and returns
a :class:`RunRecord` (what metrics.json keeps of the run) with the fitted estimator.
What one run measures, and on which data it is fitted (the likelihood policy,
dequantisation, health flags), is :mod:`.measure`'s business.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import evaluation
from ..base import name_features
from ..registry import MODELS

__all__ = ["RunRecord", "execute", "measure", "limit_threads", "clean"]

logger = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """One finished run, as metrics.json's ``runs`` lists it (plus its fingerprint)."""

    model: str
    latent_dim: int
    repeat: int
    seed: int
    fold: int | None
    metrics: dict
    fit_time_s: float | None
    epochs: int | None
    fingerprint: str = ""
    params: dict = field(default_factory=dict)
    dir: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "RunRecord":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def _epochs(est) -> int | None:
    hist = getattr(est, "history_", None)
    return len(hist["train_loss"]) if isinstance(hist, dict) and "train_loss" in hist else None


def measure(est, X_test, y_test, X_train, y_train, *, n_importance: int, seed: int) -> dict:
    """The held-out metrics of one fitted run (:func:`latentzoo.evaluation.evaluate`), without
    a likelihood policy (each model's own likelihood on the raw data)."""
    return evaluation.evaluate(est, X_test, y_test, X_train, y_train, n_importance=n_importance,
                               random_state=seed)


def limit_threads(n: int | None):
    """Cap torch's and the BLAS/OpenMP pools' threads at ``n`` in this process (None: leave)."""
    if n is None:
        return None
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(max(1, int(n)))
    return threadpool_limits(limits=max(1, int(n)))


def execute(task, split, data, *, n_importance: int, threads: int | None = None):
    """Fit ``task`` on ``split`` of ``data`` and measure it; returns ``(RunRecord, estimator)``.

    Parameters
    ----------
    task : RunTask
    split : Split
        The repeat's rows (the same for every model and q of that repeat).
    data : ExperimentData
    n_importance : int
        Importance samples per point of the VAE log-likelihood.
    threads : int, optional
        CPU threads this run may use (set when several runs share a machine).
    """
    from .likelihood_policy import resolve_policy
    from .measure import fit_run, measure_run, prepare_split

    limit_threads(threads)
    X_train, y_train, X_test, y_test = data.split(split)
    policy = data.policy if data.policy is not None else resolve_policy(data.X)
    # one dequantisation draw per split: every model of the repeat is fitted and scored on it
    run_data = prepare_split(X_train, X_test, y_train, y_test, policy, split.seed)
    spec = MODELS[task.model]
    est = spec.make(**task.overrides)
    logger.info("fitting %s on %s", task.name, X_train.shape)
    fit_time, error = fit_run(est, policy, run_data)
    if error is not None:
        logger.warning("%s: %s", task.name, error)
    metrics = measure_run(est, policy, run_data, n_importance=n_importance, seed=task.seed, error=error)
    if error is None:  # the data's feature names (a table's header, .h5ad var_names), as a DataFrame fit sets them
        name_features(est, data.meta.get("columns"))
    params = {k: v for k, v in est.get_params(deep=False).items()}
    rec = RunRecord(task.model, task.latent_dim, task.repeat, task.seed, task.fold, clean(metrics),
                    round(fit_time, 4), _epochs(est), task.fingerprint, clean(params))
    return rec, est


def clean(v):
    """JSON-ready: numpy scalars to Python, non-finite floats to None, other objects to repr."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return repr(v)
