"""The plan of an experiment: models x latent dimensions x repeats, and the splits they share.

Every repeat has its own seed and its own split of the data: repeated stratified holdout
(``test_size`` held out, a fresh shuffle per repeat) or, with ``cv=K``, the K folds of a
stratified K-fold (repeated ``repeats`` times with fresh shuffles). All models and latent
dimensions of one repeat see the same split, so their metrics can be compared in pairs.
Data that come with an official test set are not split: every repeat trains on all the
training rows and is measured on the test set; only the seed changes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: constructor parameters that do not change what a run computes (left out of its fingerprint)
UNFINGERPRINTED = ("verbose",)

__all__ = ["Split", "RunTask", "make_splits", "make_plan", "run_name", "check_latent_dims",
           "default_latent_dim", "run_cost", "longest_first"]

#: relative costs of :func:`run_cost`, in epochs of one training row through a plain autoencoder.
#: Measured on MNIST (784-256-128-2, one thread, 29 epochs of 60000 rows): the autoencoder 88 s,
#: the contractive one 147 s (its exact Jacobian penalty), the VAE 135 s (mean and scale heads at
#: both ends); the VAE's log-likelihood, 10000 rows x 500 importance samples, 85 s
CONTRACTIVE_COST = 1.7
DENSITY_COST = 1.5
IMPORTANCE_SAMPLE_COST = 0.3


@dataclass(frozen=True)
class Split:
    """Repeat ``repeat``: its seed, its fold (None for holdout) and its row indices.

    ``train``/``test`` index the training data; ``test`` is None when an official test
    set is used (then every row of the training data trains).
    """

    repeat: int
    seed: int
    fold: int | None
    train: np.ndarray
    test: np.ndarray | None


@dataclass(frozen=True)
class RunTask:
    """One (model, latent dimension, repeat) run: what to fit, on which split, its fingerprint."""

    model: str
    latent_dim: int
    repeat: int
    seed: int
    fold: int | None
    overrides: dict
    fingerprint: str

    @property
    def name(self) -> str:
        return run_name(self.model, self.latent_dim, self.repeat)


def run_name(model: str, latent_dim: int, repeat: int) -> str:
    """The run's folder name under ``DIR/runs``, e.g. ``vae-q2-r0``."""
    return f"{model}-q{latent_dim}-r{repeat}"


def default_latent_dim(n_features: int) -> tuple[int, str]:
    """The latent dimension when none is given, and the sentence the report's setup says.

    2 (the figures' 2-D latent spaces) when the data have more than 2 features, else 1:
    PPCA needs ``q < n_features``.

    Examples
    --------
    >>> default_latent_dim(64)[0], default_latent_dim(2)[0]
    (2, 1)
    """
    if n_features > 2:
        return 2, f"not given: 2, the default for data with more than 2 features ({n_features} here)"
    return 1, f"not given: 1, since the data have {n_features} feature(s) and q must be smaller"


def check_latent_dims(latent_dims, n_features: int | None = None) -> list[int]:
    """Positive, distinct integers (sorted), each smaller than ``n_features``."""
    dims = list(latent_dims) if isinstance(latent_dims, (list, tuple)) else [latent_dims]
    if not dims:
        raise ValueError("latent_dims is empty: give at least one latent dimension")
    for q in dims:
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {q!r}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"latent_dims {dims} repeat a value")
    if n_features is not None and max(dims) >= n_features:
        raise ValueError(f"latent_dim={max(dims)} must be smaller than the number of features ({n_features})")
    return sorted(int(q) for q in dims)


def _stratify(y, test_size: float):
    if y is None:
        return None
    _, counts = np.unique(y, return_counts=True)
    n_test = int(np.ceil(test_size * len(y)))
    if counts.min() >= 2 and n_test >= len(counts) and len(y) - n_test >= len(counts):
        return y
    return None


def make_splits(n: int, y=None, *, repeats: int = 1, cv: int | None = None, test_size: float = 0.2,
                seed: int = 0, official_test: bool = False) -> list[Split]:
    """The splits of every repeat (see the module docstring); repeat ``r`` has seed ``seed + r``.

    With ``cv=K`` there are ``K * repeats`` splits: repeat ``r`` is fold ``r % K`` of the
    ``r // K``-th shuffle (scikit-learn's ``RepeatedStratifiedKFold`` with ``seed``).
    """
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, ShuffleSplit, StratifiedShuffleSplit

    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    rows = np.arange(n)
    if official_test:
        if cv is not None:
            raise ValueError("cv cannot be combined with an official test set: the test set is fixed")
        return [Split(r, seed + r, None, rows, None) for r in range(repeats)]
    if cv is not None:
        if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
            raise ValueError(f"cv must be an integer >= 2 (the number of folds), got {cv!r}")
        if cv > n:
            raise ValueError(f"cv={cv} folds need at least {cv} samples, got {n}")
        strat = y is not None and np.unique(y, return_counts=True)[1].min() >= cv
        kf = (RepeatedStratifiedKFold if strat else RepeatedKFold)(n_splits=cv, n_repeats=repeats,
                                                                    random_state=seed)
        return [Split(r, seed + r, r % cv, np.sort(tr), np.sort(te))
                for r, (tr, te) in enumerate(kf.split(rows, y if strat else None))]
    if not (0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    out = []
    for r in range(repeats):
        strat = _stratify(y, test_size)
        splitter = (StratifiedShuffleSplit if strat is not None else ShuffleSplit)(
            n_splits=1, test_size=test_size, random_state=seed + r)
        tr, te = next(splitter.split(rows, strat))
        out.append(Split(r, seed + r, None, np.sort(tr), np.sort(te)))
    return out


def _fingerprint(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def make_plan(models: Sequence[str], latent_dims: Sequence[int], splits: Sequence[Split], *,
              overrides, data_fingerprint: str, settings: dict) -> list[RunTask]:
    """Every (model, q, repeat) run, latent dimension outermost then repeat then model.

    ``overrides(name, q, seed)`` gives the constructor overrides of one run. The
    fingerprint covers the data, the model's parameters, the split and ``settings``
    (evaluation options, latentzoo's version): a stored run whose fingerprint differs is stale.
    """
    tasks = []
    for q in latent_dims:
        for sp in splits:
            for name in models:
                ov = overrides(name, q, sp.seed)
                kept = {k: v for k, v in ov.items() if k not in UNFINGERPRINTED}
                fp = _fingerprint({"data": data_fingerprint, "model": name, "params": kept, "q": q,
                                   "repeat": sp.repeat, "seed": sp.seed, "fold": sp.fold,
                                   "split": _digest(sp), "settings": settings})
                tasks.append(RunTask(name, q, sp.repeat, sp.seed, sp.fold, ov, fp))
    return tasks


def _digest(sp: Split) -> str:
    h = hashlib.sha256(np.ascontiguousarray(sp.train, dtype=np.int64).tobytes())
    if sp.test is not None:
        h.update(b"|" + np.ascontiguousarray(sp.test, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def run_cost(task: RunTask, n_train: int, n_test: int, n_importance: int) -> float:
    """A rough cost of ``task``, to order parallel runs (units: one training row-epoch of a
    plain autoencoder).

    A neural fit costs ``max_epochs * n_train``, times :data:`CONTRACTIVE_COST` with a
    contractive penalty and :data:`DENSITY_COST` for a density model (a VAE); a density
    model's importance-sampled log-likelihood adds ``IMPORTANCE_SAMPLE_COST * n_importance *
    n_test``. A linear model (closed form or EM) counts as 1, less than any neural fit.
    """
    from ..registry import MODELS

    spec = MODELS[task.model]
    params = spec.make(**task.overrides).get_params(deep=False)  # the run's estimator (its constructor only stores)
    epochs = params.get("max_epochs")
    if epochs is None:
        return 1.0  # less than one row-epoch of any neural fit: they start last
    cost = float(epochs) * n_train
    if params.get("contractive"):
        cost *= CONTRACTIVE_COST
    if getattr(spec.cls, "has_density", False):
        cost = cost * DENSITY_COST + IMPORTANCE_SAMPLE_COST * n_importance * n_test
    return cost


def longest_first(tasks: Sequence[RunTask], n_train: int, n_test: int, n_importance: int) -> list[RunTask]:
    """``tasks`` by :func:`run_cost`, the longest first (ties in plan order).

    N workers that each take the next run finish soonest, near enough, when the longest
    runs start first (Graham's LPT rule, 1969: within 4/3 of the best schedule); in plan
    order a long run started last keeps one worker busy while the others wait.
    """
    return sorted(tasks, key=lambda t: -run_cost(t, n_train, n_test, n_importance))
