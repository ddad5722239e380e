"""Run the ladder on one dataset and collect what the report shows.

:func:`run_comparison` splits the data, fits every requested registered model on the
training split (neural models with the likelihood that suits the data, see
:func:`choose_likelihood`), and measures each on the held-out split with
:func:`latentzoo.evaluation.evaluate`. :func:`evaluate_fitted` does the same for models
that are already fitted (the single-model ``latentzoo report``).
"""
from __future__ import annotations

import inspect
import math
import logging
import platform
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import evaluation
from ..base import latent_dim
from ..registry import MODELS
from .likelihood_policy import LikelihoodPolicy
from .measure import constructor_likelihood

__all__ = [
    "DEFAULT_MODELS", "DEFAULT_EPOCHS", "auto_epochs", "resolve_epochs", "short_run_lr", "short_run_epochs",
    "DEFAULT_HIDDEN", "ModelResult",
    "Comparison", "choose_likelihood", "model_overrides", "check_params", "run_comparison", "evaluate_fitted",
    "versions",
]

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("pca", "ppca", "ae", "dae", "cae", "vae", "beta-vae")
#: defaults of the comparison (chosen so `make demo` on the digits stays well under
#: five minutes on a 2-core CPU, see the README)
DEFAULT_EPOCHS = "auto"
#: the most epochs of a neural fit; ``epochs="auto"`` trains about STEP_BUDGET optimiser steps,
#: at least MIN_EPOCHS and at most MAX_EPOCHS epochs (see :func:`auto_epochs`)
MAX_EPOCHS = 100
MIN_EPOCHS = 10
STEP_BUDGET = 12000
#: Adam's peak rate of a shortened fit, per estimator class name (a class not
#: listed takes its nearest listed base's, else DEFAULT_SHORT_RUN_LR); full-length fits keep the
#: models' own default (1e-3). Chosen on MNIST, q = 2 (benchmarks/bench_compare.py), with a
#: cosine from the first epoch (before SHORT_RUN_SCHEDULE): the
#: autoencoder's held-out reconstruction after 30 epochs is 27.64 at 3e-3 against 28.66 at 1e-3
#: (100 epochs at 1e-3: 27.56); the learned-variance VAE's held-out log-likelihood after 29
#: epochs is lower at 3e-3 than at 1e-3 on every seed tried (seeds 0, 1, 2: -2310 / -2272 / -2639
#: against -2287 / -2260 / -2254 nats; at 3e-3 seed 2 nearly collapsed, kNN accuracy 0.21): its
#: noisier gradient (a per-pixel variance) wants the smaller step
SHORT_RUN_LR = {"Autoencoder": 3e-3, "VAE": 1e-3}
#: a shortened fit of a model whose training objective is itself noisy gets more epochs (at most
#: MAX_EPOCHS): the noise adds to the gradient's, so the same steps leave it farther from its
#: optimum. Input corruption (``noise`` set: the denoising autoencoder) takes NOISY_INPUT_EPOCHS
#: times max_epochs. On MNIST, q = 2, seeds 0 / 1 / 2 (cosine from the first epoch):
#: held-out reconstruction 27.47 / 27.39 / 27.63 after 29 epochs, 26.82 / 26.65 / 26.79 after 58,
#: 26.96 / 26.48 / 26.98 after ``--epochs 100`` (kNN accuracy 0.795 / 0.804 / 0.805, 0.808 / 0.838 /
#: 0.819, 0.846 / 0.853 / 0.835); the plain autoencoder is within 1% of its 100-epoch
#: reconstruction after 29. Holding the rate (SHORT_RUN_SCHEDULE), 44 epochs were not enough:
#: kNN accuracy 2.2% under the 100-epoch runs' (58: 1.4%)
NOISY_INPUT_EPOCHS = 2
#: a sampled latent (the VAEs' reparametrised ELBO, Kingma & Welling 2014) takes this many times
#: max_epochs, per estimator class name (looked up as SHORT_RUN_LR is; a class not listed: 1). On MNIST, q = 2, seeds 0-4, holding the rate, relative to
#: ``--epochs 100`` (mean of the paired differences, 95% t-interval): VAE held-out reconstruction
#: +2.5% [+0.5, +4.5] after 29 epochs, +1.4% [-1.2, +3.9] after 44; kNN accuracy -3.5% / -1.1%;
#: beta-VAE reconstruction +1.6% / +0.7%, kNN accuracy -3.2% / -1.4%; log-likelihood within 1.2%
#: at both
SHORT_RUN_EPOCH_FACTOR = {"VAE": 1.5}
DEFAULT_SHORT_RUN_LR = 3e-3
#: the learning-rate schedule of every shortened fit: the rate is held for 85% of the epochs,
#: then annealed ("constant-cosine"). A cosine from the first epoch halves the steps' total size;
#: at a constant 1e-3 the VAE's held-out reconstruction keeps improving for 33-65 epochs
#: (``--epochs 100``). On MNIST, q = 2, seeds 0 / 1 / 2 (benchmarks/bench_compare.py), VAE after 29
#: epochs: held-out reconstruction 45.78 / 45.45 / 45.01 (cosine), 44.25 / 44.39 / 44.44 (holding
#: 70%), 44.00 / 44.27 / 44.43 (holding 85%), 42.43 / 44.25 / 43.75 (``--epochs 100``); kNN
#: accuracy 0.391 / 0.354 / 0.447, 0.437 / 0.392 / 0.449, 0.444 / 0.399 / 0.442, 0.465 / 0.393 /
#: 0.455; ELBO -2310 / -2288 / -2282, -2294 / -2283 / -2240, -2275 / -2272 / -2355, -2253 / -2314 /
#: -2361 nats. Beta-VAE reconstruction 45.37 / 45.38 / 45.84, 45.42 / 44.79 / 45.59, 45.42 / 44.60 /
#: 45.37, 44.75 / 44.17 / 43.61. The autoencoders (holding 85% against cosine, mean over the seeds,
#: relative to ``--epochs 100``): kNN accuracy AE -1.5% / -2.6%, DAE -1.4% / -2.7%, CAE +1.0% /
#: -0.2%, reconstruction within 1.1% either way. Also tried for the VAE (seed 0, cosine): a batch
#: of 64 (45.08, stopped early at 24 epochs), a KL warm-up of 5 epochs (45.79), a peak of 2e-3
#: (45.09; seed 2: 46.89), a constant 1e-3 (44.18, but ELBO -2353)
SHORT_RUN_SCHEDULE = "constant-cosine"
DEFAULT_HIDDEN = (256, 128)
DEFAULT_N_IMPORTANCE = 500


@dataclass
class ModelResult:
    """One fitted rung: its registry name, the estimator, its metrics and fit time."""

    name: str
    model: Any
    metrics: dict
    fit_time_s: float | None
    params: dict = field(default_factory=dict)

    @property
    def epochs(self) -> int | None:
        hist = getattr(self.model, "history_", None)
        return len(hist["train_loss"]) if isinstance(hist, dict) and "train_loss" in hist else None

    @property
    def failed(self) -> bool:
        """Whether the fit failed (e.g. diverged): no fitted model, no metrics."""
        return self.metrics.get("error") is not None

    def row(self) -> dict:
        return {"model": self.name, **{k: self.metrics.get(k) for k in _ROW_KEYS},
                "flags": list(self.metrics.get("flags") or []), "fit_time_s": self.fit_time_s,
                "epochs": self.epochs}


_ROW_KEYS = ("reconstruction_error", "log_likelihood", "bits_per_dim", "log_likelihood_measure",
             "log_likelihood_method", "elbo", "knn_accuracy", "knn_r2",
             "trustworthiness", "active_units", "sample_realism",
             "interpolation_smoothness")
#: the columns every metrics.csv has (one line per run; metrics beyond these follow the run's own keys)
COLUMNS = ("model", "latent_dim", "repeat", "seed", "fold") + _ROW_KEYS + ("flags", "fit_time_s", "epochs")


@dataclass
class Comparison:
    """Everything the report needs: data, splits, fitted models, metrics, setup."""

    meta: dict
    X_train: np.ndarray | None
    y_train: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray | None
    results: list[ModelResult]
    setup: dict
    realism_reference: float | None = None
    #: every (model, q, repeat) run (:class:`~.runner.RunRecord`), the summary rows over
    #: repeats, the pairwise comparisons, the verdict sentences (see docs/metrics-json.md)
    runs: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    comparisons: dict = field(default_factory=dict)
    verdict: list = field(default_factory=list)
    ppca_evidence_q: int | None = None
    #: the latent dimension of ``results`` (the models the figures show)
    figure_q: int | None = None
    #: on data with missing values: RMSE on entries hidden from the held-out rows, every
    #: model and the scikit-learn references (:func:`~.imputation.imputation_table`)
    imputation: dict | None = None

    @property
    def models(self) -> dict:
        """The fitted models (failed runs left out), by name."""
        return {r.name: r.model for r in self.results if not r.failed}

    @property
    def image_shape(self):
        return self.meta.get("image_shape")


def choose_likelihood(X) -> tuple[str, str]:
    """Bernoulli for data inside [0, 1], Gaussian (unit variance) otherwise; with the reason."""
    lo, hi = float(np.nanmin(X)), float(np.nanmax(X))
    if lo >= 0.0 and hi <= 1.0:
        return "bernoulli", f"data lie in [0, 1] (observed range [{lo:.3g}, {hi:.3g}]): Bernoulli decoder"
    return "gaussian", f"data leave [0, 1] (observed range [{lo:.3g}, {hi:.3g}]): Gaussian decoder (unit variance)"


def _accepted(spec) -> set[str]:
    return set(inspect.signature(spec.cls.__init__).parameters) - {"self"}


def auto_epochs(n_train: int, *, batch_size: int = 128, validation_fraction: float = 0.1) -> int:
    """Epochs of ``epochs="auto"``: training length that scales with the data.

    ``ceil(STEP_BUDGET / steps_per_epoch)`` clipped to ``[MIN_EPOCHS, MAX_EPOCHS]``, with
    ``steps_per_epoch = ceil(n_train (1 - validation_fraction) / batch_size)``: small data
    (the digits: 11 steps an epoch) keep 100 epochs, 60 000 images get 29. Shortened fits
    start at a learning rate of their own (:func:`short_run_lr`), hold it for 85% of their
    epochs and then anneal it (:data:`SHORT_RUN_SCHEDULE`), so they end at a small step size;
    models with a noisy objective (input noise, a sampled latent) train longer
    (:func:`short_run_epochs`).
    """
    steps = max(1, math.ceil(n_train * (1.0 - validation_fraction) / batch_size))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(STEP_BUDGET / steps))))


def resolve_epochs(epochs, n_train: int) -> tuple[int | None, bool]:
    """``(max_epochs, shortened)`` of the neural runs for ``epochs`` (an int, None or
    "auto"); None: the models' own default. A shortened auto fit starts at each model's
    :func:`short_run_lr` and follows :data:`SHORT_RUN_SCHEDULE`."""
    if epochs != "auto":
        return epochs, False
    e = auto_epochs(n_train)
    return e, e < MAX_EPOCHS


def _for_class(table: dict, cls: type, default):
    """``table``'s value for the nearest class of ``cls.__mro__`` it names, else ``default``."""
    return next((table[c.__name__] for c in cls.__mro__ if c.__name__ in table), default)


def short_run_epochs(max_epochs: int, cls: type, params: dict) -> int:
    """Epochs of a shortened fit of estimator class ``cls`` with constructor parameters
    ``params``: ``max_epochs`` times :data:`NOISY_INPUT_EPOCHS` for input ``noise``, else times
    the class's :data:`SHORT_RUN_EPOCH_FACTOR` (the VAEs'); at most MAX_EPOCHS."""
    factor = NOISY_INPUT_EPOCHS if params.get("noise") else _for_class(SHORT_RUN_EPOCH_FACTOR, cls, 1)
    return int(min(MAX_EPOCHS, math.ceil(factor * max_epochs)))


def short_run_lr(cls: type) -> float:
    """Adam's peak rate of a shortened fit of estimator class ``cls`` (:data:`SHORT_RUN_LR`)."""
    return _for_class(SHORT_RUN_LR, cls, DEFAULT_SHORT_RUN_LR)


def model_overrides(spec, *, latent_dim: int, epochs: int | None, seed: int, device: str,
                    likelihood: str | LikelihoodPolicy | None, hidden=DEFAULT_HIDDEN,
                    lr_schedule: str | None = None, lr: float | None = None) -> dict:
    """Constructor overrides for ``spec``, keeping only parameters its class accepts.

    ``likelihood`` is a spec for every neural rung, or a :class:`LikelihoodPolicy` (the
    density rungs get its likelihood, the autoencoders its reconstruction likelihood).
    """
    if isinstance(likelihood, LikelihoodPolicy):
        likelihood = constructor_likelihood(spec.cls, likelihood)
    wanted = {"n_components": latent_dim, "random_state": seed, "device": device, "verbose": 0,
              "likelihood": likelihood, "max_epochs": epochs, "hidden": hidden, "lr_schedule": lr_schedule, "lr": lr}
    ok = _accepted(spec)
    return {k: v for k, v in wanted.items() if k in ok and v is not None}


def versions() -> dict:
    import sklearn
    import torch

    import latentzoo

    return {"latentzoo": latentzoo.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def _device_description(device: str) -> str:
    from ..neural.engine import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        import torch

        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    import torch

    n = torch.get_num_threads()
    return f"cpu ({n} torch thread{'s' if n > 1 else ''})"


def _check_models(names: Sequence[str]) -> list[str]:
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(map(repr, unknown))}; known models: {', '.join(MODELS)}")
    if not names:
        raise ValueError(f"no models given; known models: {', '.join(MODELS)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"model(s) {', '.join(map(repr, twice))} listed more than once; give each model once")
    return names


def check_params(params: dict | None, names: Sequence[str]) -> dict:
    """Validate per-model constructor parameters before any fit: ``{model: {name: value}}``.

    Every model must be among ``names``, every name a constructor parameter of its class,
    and each value must pass the estimator's own parameter validation. Returns ``params``
    with an entry (maybe empty) for every model.
    """
    params = params or {}
    for model in params:
        if model not in names:
            raise ValueError(f"parameters given for model {model!r}, which is not among the compared models "
                             f"({', '.join(names)})")
    out = {}
    for name in names:
        spec = MODELS[name]
        given = dict(params.get(name, {}))
        unknown = sorted(set(given) - _accepted(spec))
        if unknown:
            raise ValueError(f"{name}: unknown parameter(s) {', '.join(unknown)}; valid parameters: "
                             f"{', '.join(sorted(_accepted(spec) - {'verbose'}))}")
        try:
            spec.make(**given)._validate_params()
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: {e}") from None
        out[name] = given
    return out


def run_comparison(data="digits", models: Sequence[str] = DEFAULT_MODELS, *, latent_dim: int | None = None,
                   **kw) -> Comparison:
    """Fit each registered model in ``models`` on one train split of ``data``; measure on the rest.

    The one-latent-dimension, one-repeat case of :func:`latentzoo.experiment.run_experiment`
    (which takes the same keywords: ``epochs``, ``hidden``, ``test_size``, ``seed``,
    ``device``, ``n_importance``, ``n_samples``, ``progress``, ``likelihood``, ``params``, ...).
    ``latent_dim`` None: the one the data allow (:func:`~latentzoo.experiment.plan.default_latent_dim`).
    """
    from .sweep import run_experiment

    return run_experiment(data, models, latent_dims=None if latent_dim is None else [latent_dim], **kw)


def evaluate_fitted(models: dict, data, *, seed: int = 0, n_importance: int = DEFAULT_N_IMPORTANCE,
                    extra_setup: dict | None = None) -> Comparison:
    """Measure already fitted models on ``data`` (all of it is the evaluation set).

    Without a training split, kNN accuracy is cross-validated on the codes of ``data``
    and the code Gaussian of sample realism is fitted on ``data`` itself (see :func:`evaluation.evaluate`).
    """
    from ..data import Dataset, load_dataset

    X, y, meta = data if isinstance(data, Dataset) else load_dataset(data, random_state=seed)
    results = []
    from .health import RunEvidence, health_flags

    for name, est in models.items():
        metrics = evaluation.evaluate(est, X, y, n_importance=n_importance, random_state=seed)
        metrics["log_likelihood_measure"] = "log p(x) of the given data under each model's own likelihood"
        metrics["log_likelihood_method"] = metrics.get("log_likelihood_method") or "n/a: no density model"
        metrics["flags"] = health_flags(RunEvidence(est, metrics, {}, int(X.shape[1])))
        results.append(ModelResult(name, est, metrics, None, est.get_params(deep=False)))
    first = next(iter(models.values()))
    device = getattr(first, "device", "cpu")
    setup = {"latent_dim": latent_dim(first), "seed": seed,
             "device": _device_description(device if isinstance(device, str) else str(device)),
             "n_importance": n_importance, "n_test": int(len(X)), "versions": versions(),
             **(extra_setup or {})}
    from .runner import RunRecord, clean
    from .stats import summarize

    runs = [RunRecord(r.name, int(getattr(r.model, "n_components", 0) or 0), 0, seed, None, clean(r.metrics),
                      None, r.epochs, "", clean(r.params)) for r in results]
    if isinstance(X, np.memmap):  # the figures draw a bounded subset; the metrics used every row
        from .data import figure_subset

        (X, y), setup["figure_rows"] = figure_subset((X, y), seed=seed)
    return Comparison(meta, None, None, X, y, results, setup, None, runs=runs, summary=summarize(runs),
                      figure_q=setup["latent_dim"])
