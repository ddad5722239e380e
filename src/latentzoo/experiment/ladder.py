"""Run the ladder on one dataset and collect what the report shows.

:func:`run_comparison` splits the data, fits every requested registered model on the
training split (neural models with the likelihood that suits the data, see
:func:`choose_likelihood`), and measures each on the held-out split with
:func:`latentzoo.evaluation.evaluate`. :func:`evaluate_fitted` does the same for models
that are already fitted (the single-model ``latentzoo report``).
"""
from __future__ import annotations

import inspect
import logging
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import evaluation
from ..registry import MODELS

__all__ = [
    "DEFAULT_MODELS", "DEFAULT_EPOCHS", "DEFAULT_HIDDEN", "ModelResult", "Comparison",
    "choose_likelihood", "model_overrides", "run_comparison", "evaluate_fitted", "versions",
]

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("pca", "ppca", "ae", "dae", "cae", "vae", "beta-vae")
#: defaults of the comparison (chosen so `make demo` on the digits stays well under
#: five minutes on a 2-core CPU, see the README)
DEFAULT_EPOCHS = 100
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

    def row(self) -> dict:
        return {"model": self.name, **{k: self.metrics.get(k) for k in _ROW_KEYS},
                "fit_time_s": self.fit_time_s, "epochs": self.epochs}


_ROW_KEYS = ("reconstruction_error", "log_likelihood", "log_likelihood_method", "elbo", "knn_accuracy",
             "trustworthiness", "active_units", "prior_realism", "interpolation_smoothness")
#: the columns of metrics.csv, in order
COLUMNS = ("model",) + _ROW_KEYS + ("fit_time_s", "epochs")


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

    @property
    def models(self) -> dict:
        return {r.name: r.model for r in self.results}

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


def model_overrides(spec, *, latent_dim: int, epochs: int | None, seed: int, device: str,
                    likelihood: str | None, hidden=DEFAULT_HIDDEN) -> dict:
    """Constructor overrides for ``spec``, keeping only parameters its class accepts."""
    wanted = {"n_components": latent_dim, "random_state": seed, "device": device, "verbose": 0,
              "likelihood": likelihood, "max_epochs": epochs, "hidden": hidden}
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


def _split(X, y, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    stratify = None
    if y is not None:
        _, counts = np.unique(y, return_counts=True)
        n_test = int(np.ceil(test_size * len(y)))
        if counts.min() >= 2 and n_test >= len(counts) and len(y) - n_test >= len(counts):
            stratify = y
    if y is None:
        Xtr, Xte = train_test_split(X, test_size=test_size, random_state=seed)
        return Xtr, None, Xte, None
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=stratify)
    return Xtr, ytr, Xte, yte


def _check_models(names: Sequence[str]) -> list[str]:
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(map(repr, unknown))}; known models: {', '.join(MODELS)}")
    if not names:
        raise ValueError(f"no models given; known models: {', '.join(MODELS)}")
    return names


def _progress_bar(names, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(names, desc="models", unit="model", file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), leave=False)


def run_comparison(data="digits", models: Sequence[str] = DEFAULT_MODELS, *, latent_dim: int = 2,
                   epochs: int | None = DEFAULT_EPOCHS, hidden=DEFAULT_HIDDEN, test_size: float = 0.2,
                   seed: int = 0, device: str = "auto", n_importance: int = DEFAULT_N_IMPORTANCE,
                   n_samples: int | None = None, progress: bool = True,
                   on_result: Callable[[ModelResult], None] | None = None) -> Comparison:
    """Fit each registered model in ``models`` on a train split of ``data``; measure on the rest.

    Parameters
    ----------
    data : str, path, array or Dataset
        Anything :func:`latentzoo.load_dataset` accepts (default: the embedded digits).
    models : sequence of str
        Registry names (:data:`latentzoo.registry.MODELS`), in the order shown.
    latent_dim : int
        ``n_components`` of every model.
    epochs : int or None
        ``max_epochs`` of the neural models (None: their own default).
    test_size : float
        Held-out fraction (stratified by label when labels allow).
    on_result : callable, optional
        Called with each :class:`ModelResult` as soon as it is measured.
    """
    from ..data import Dataset, load_dataset

    names = _check_models(models)
    if not (0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    ds = data if isinstance(data, Dataset) else load_dataset(data, random_state=seed, n_samples=n_samples)
    X, y, meta = ds
    if X.shape[0] < 10:
        raise ValueError(f"{meta.get('source')}: {X.shape[0]} samples are too few to split into train and test")
    if latent_dim >= X.shape[1]:
        raise ValueError(f"latent_dim={latent_dim} must be smaller than the number of features ({X.shape[1]})")
    likelihood, why = choose_likelihood(X)
    Xtr, ytr, Xte, yte = _split(X, y, test_size, seed)
    setup = {"latent_dim": int(latent_dim), "epochs": epochs, "hidden": list(hidden) if hidden else None,
             "test_size": test_size, "seed": seed, "device": _device_description(device),
             "likelihood": likelihood, "likelihood_reason": why, "n_importance": n_importance,
             "n_train": int(len(Xtr)), "n_test": int(len(Xte)), "versions": versions()}
    results = []
    bar = _progress_bar(names, progress)
    for name in bar:
        bar.set_postfix_str(name)
        spec = MODELS[name]
        est = spec.make(**model_overrides(spec, latent_dim=latent_dim, epochs=epochs, seed=seed, device=device,
                                          likelihood=likelihood, hidden=hidden))
        logger.info("fitting %s on %s", name, Xtr.shape)
        t0 = time.perf_counter()
        est.fit(Xtr)
        fit_time = time.perf_counter() - t0
        metrics = evaluation.evaluate(est, Xte, yte, Xtr, ytr, n_importance=n_importance, random_state=seed)
        res = ModelResult(name, est, metrics, fit_time, est.get_params(deep=False))
        results.append(res)
        if on_result is not None:
            on_result(res)
    bar.close()
    ref = evaluation.data_realism_reference(Xtr, Xte)
    return Comparison(meta, Xtr, ytr, Xte, yte, results, setup, ref)


def evaluate_fitted(models: dict, data, *, seed: int = 0, n_importance: int = DEFAULT_N_IMPORTANCE,
                    extra_setup: dict | None = None) -> Comparison:
    """Measure already fitted models on ``data`` (all of it is the evaluation set).

    Without a training split, kNN accuracy is cross-validated on the codes of ``data``
    and prior realism is measured against ``data`` itself (see :func:`evaluation.evaluate`).
    """
    from ..data import Dataset, load_dataset

    X, y, meta = data if isinstance(data, Dataset) else load_dataset(data, random_state=seed)
    results = []
    for name, est in models.items():
        metrics = evaluation.evaluate(est, X, y, n_importance=n_importance, random_state=seed)
        results.append(ModelResult(name, est, metrics, None, est.get_params(deep=False)))
    first = next(iter(models.values()))
    device = getattr(first, "device", "cpu")
    setup = {"latent_dim": getattr(first, "n_components", None), "seed": seed,
             "device": _device_description(device if isinstance(device, str) else str(device)),
             "n_importance": n_importance, "n_test": int(len(X)), "versions": versions(),
             **(extra_setup or {})}
    return Comparison(meta, None, None, X, y, results, setup, None)
