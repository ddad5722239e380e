"""Run an experiment: the plan models x latent dimensions x repeats, resumable, in parallel.

:func:`run_experiment` checks every option (and the destination folder) before any fit,
loads the data and their official test set (:mod:`.data`), makes the splits and the plan
(:mod:`.plan`), reuses the runs already stored under ``out`` whose fingerprint matches
(:mod:`.store`), runs the others on a backend (:mod:`.backends`), storing each as it
finishes, and summarises them (:mod:`.stats`) into a :class:`~.ladder.Comparison`.
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import Callable, Sequence

import numpy as np

from ..base import UNNAMED_INPUT_WARNING
from ..registry import MODELS
from .backends import BACKENDS, run_all
from .data import figure_subset, prepare_data
from ..data.blocks import is_mapped
from .ladder import (DEFAULT_EPOCHS, DEFAULT_HIDDEN, DEFAULT_MODELS, DEFAULT_N_IMPORTANCE, Comparison,
                     ModelResult, _accepted, _check_models, _device_description, check_params, model_overrides,
                     SHORT_RUN_SCHEDULE, resolve_epochs, short_run_epochs, short_run_lr, versions)
from .imputation import imputation_table
from .likelihood_policy import resolve_policy
from ..data.missing import cannot_take_missing, fill_column_means, has_missing, missing_value_params
from .plan import check_latent_dims, default_latent_dim, longest_first, make_plan, make_splits
from .stats import METRIC_LABELS, TEST, compare, summarize, verdict
from .store import RunStore, check_destination

__all__ = ["run_experiment", "figure_latent_dim"]

logger = logging.getLogger(__name__)


def _check_memory(tasks, n_features: int) -> None:
    """Every network of the plan fits in memory (counted without allocating): checked before any fit."""
    seen = set()
    for t in tasks:
        key = (t.model, repr(sorted((k, v) for k, v in t.overrides.items() if k != "random_state")))
        est = None if key in seen else MODELS[t.model].make(**t.overrides)
        seen.add(key)
        if est is not None and hasattr(est, "check_memory"):
            est._validate_params()
            est.check_memory(n_features)


def figure_latent_dim(latent_dims: Sequence[int]) -> int:
    """The q the figures show: 2 when it is in the plan (2-D grids and ellipses), else the first."""
    return 2 if 2 in latent_dims else latent_dims[0]


def _check_options(jobs, backend, scheduler, n_importance) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if backend == "dask" and not scheduler:
        raise ValueError("the dask backend needs a scheduler address, e.g. tcp://HOST:8786")
    if backend != "dask" and scheduler:
        raise ValueError("a scheduler address is for the dask backend (backend='dask')")
    if isinstance(n_importance, bool) or not isinstance(n_importance, int) or n_importance < 1:
        raise ValueError(f"n_importance must be a positive integer, got {n_importance!r}")


def run_experiment(data="digits", models: Sequence[str] = DEFAULT_MODELS, *,
                   latent_dims: Sequence[int] | None = None,
                   repeats: int = 1, cv: int | None = None, epochs: int | None = DEFAULT_EPOCHS,
                   hidden=DEFAULT_HIDDEN, test_size: float = 0.2, seed: int = 0, device: str = "auto",
                   n_importance: int = DEFAULT_N_IMPORTANCE, n_samples: int | None = None, test_data=None,
                   out=None, jobs: int = 1, backend: str = "local", scheduler: str | None = None,
                   progress: bool = True, verbose: int = 0, load_kw: dict | None = None,
                   likelihood: str = "auto", params: dict | None = None,
                   preprocess: str = "none", on_run: Callable | None = None) -> Comparison:
    """Fit and measure every (model, latent dimension, repeat) run of the plan.

    Parameters
    ----------
    data : str, path, array or Dataset
        Anything :func:`latentzoo.load_dataset` accepts. A folder with an official test
        split (MNIST IDX t10k, binarised MNIST test) is measured on it.
    models : sequence of str
        Registry names (:data:`latentzoo.registry.MODELS`), in the order shown.
    latent_dims : sequence of int, optional
        ``n_components`` of the runs (the sweep). None: the one the data allow, 2 when they
        have more than 2 features, else 1 (:func:`.plan.default_latent_dim`; the setup says so).
    repeats : int
        Repeats of repeated stratified holdout, each with seed ``seed + r`` and its own split
        (with ``cv``: repeats of K-fold, K runs each).
    cv : int, optional
        K-fold cross-validation instead of holdout.
    test_data : path, array or Dataset, optional
        An explicit test set (then nothing is split).
    out : path, optional
        Report folder: every finished run is stored under ``out/runs`` and reused when
        the same experiment runs again (see :mod:`.store`). Checked before any fit.
    jobs, backend, scheduler
        ``backend="local"`` runs ``jobs`` fits at once in separate processes;
        ``backend="dask"`` submits them to the Dask scheduler at ``scheduler``.
    likelihood : str, default="auto"
        ``"auto"`` (:func:`~.likelihood_policy.resolve_policy`: Bernoulli on binary data,
        dequantised densities on discrete levels, learned-variance Gaussian on continuous
        data) or a registered likelihood spec for every neural rung; one log-likelihood
        measure for the whole report either way.
    params : dict, optional
        ``{model: {parameter: value}}`` constructor parameters of single models, e.g.
        ``{"vae": {"beta": 4.0}}``; validated before any fit.
    preprocess : str, default="none"
        A :mod:`latentzoo.preprocessing` method (``"auto"``, ``"log1p"``, ``"standard"``, ...)
        fitted on the training data before the splits; the setup states what was done.
    on_run : callable, optional
        ``on_run(record, done, total, reused)`` after every run (reused runs too).
    """
    names = _check_models(models)
    names = list(dict.fromkeys(names))  # a model named twice is one model
    if latent_dims is not None:
        check_latent_dims(latent_dims)
    _check_options(jobs, backend, scheduler, n_importance)
    if epochs not in ("auto", None) and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive integer, 'auto' or None, got {epochs!r}")
    if cv is None and not (0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    params = check_params(params, names)
    store = RunStore(None if out is None else check_destination(out))

    ds = prepare_data(data, test_data=test_data, seed=seed, n_samples=n_samples, load_kw=load_kw,
                      preprocess=preprocess)
    X, y, meta = ds.X, ds.y, ds.meta
    if X.shape[0] < 10 and not ds.official_test:
        raise ValueError(f"{meta.get('source')}: {X.shape[0]} samples are too few to split into train and test")
    dim_reason = None
    if latent_dims is None:
        q, dim_reason = default_latent_dim(X.shape[1])
        latent_dims = [q]
    dims = check_latent_dims(latent_dims, X.shape[1])
    policy = resolve_policy(X, likelihood)
    ds.policy = policy
    splits = make_splits(len(X), y, repeats=repeats, cv=cv, test_size=test_size, seed=seed,
                         official_test=ds.official_test)
    # the version too: another release may fit or measure differently, so its stored runs are stale
    settings = {"n_importance": n_importance, "likelihood_policy": policy.as_dict(), "test_source": ds.test_source,
                "latentzoo": versions()["latentzoo"]}

    max_epochs, shortened = resolve_epochs(epochs, len(splits[0].train))
    # a shortened fit's peak rate, schedule and epochs, per neural model (input noise and a
    # sampled latent train longer); a --param of the model wins, and setup records what the runs use
    lr = _per_model(names, "lr", params, lambda n: short_run_lr(MODELS[n].cls)) if shortened else None
    schedules = _per_model(names, "lr_schedule", params, lambda n: SHORT_RUN_SCHEDULE) if shortened else None
    epochs_of = (_per_model(names, "max_epochs", params,
                            lambda n: short_run_epochs(max_epochs, MODELS[n].cls, {**MODELS[n].params, **params[n]}))
                 if shortened else {})

    def overrides(name, q, run_seed):
        return {**model_overrides(MODELS[name], latent_dim=q, epochs=epochs_of.get(name, max_epochs),
                                  seed=run_seed, device=device, likelihood=policy, hidden=hidden,
                                  lr_schedule=(schedules or {}).get(name), lr=(lr or {}).get(name)),
                **params[name], **missing_params.get(name, {})}

    missing_params: dict = {}
    names, missing = _missing_values(names, X, lambda name: overrides(name, dims[0], seed), meta)
    missing_params.update(missing["params"])

    tasks = make_plan(names, dims, splits, overrides=overrides, data_fingerprint=ds.fingerprint, settings=settings)
    _check_memory(tasks, X.shape[1])
    # the running fits' epoch bars on a terminal (with --jobs N, one line per worker, drawn
    # here); with -v, epoch lines in logs
    tty_bar = progress and sys.stderr.isatty() and backend == "local"
    for t in tasks:
        if "verbose" in t.overrides:
            t.overrides["verbose"] = int(verbose) or int(tty_bar)
    split_of = {sp.repeat: sp for sp in splits}
    done = {}
    for t in tasks:
        rec = store.load(t)
        if rec is not None:
            done[t.name] = rec
    pending = [t for t in tasks if t.name not in done]
    fig_q = figure_latent_dim(dims)
    logger.info("plan: %d runs, %d stored, %d to fit", len(tasks), len(done), len(pending))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), initial=len(done), desc="runs", unit="run", file=sys.stderr, leave=False,
               disable=not (progress and sys.stderr.isatty()), dynamic_ncols=True)
    n_done = 0
    for t in tasks:
        if t.name in done and on_run is not None:
            n_done += 1
            on_run(done[t.name], n_done, len(tasks), True)
    kept = {}  # fitted estimators of the figure runs, when nothing is stored
    t0 = time.perf_counter()
    try:
        if backend != "local" or jobs > 1:  # parallel: the longest runs start first (one after the other: plan order)
            n_test = len(ds.X_test) if ds.official_test else len(splits[0].test)
            pending = longest_first(pending, len(splits[0].train), n_test, n_importance)
        for rec, est in run_all([(t, split_of[t.repeat]) for t in pending], ds, backend=backend, jobs=jobs,
                                scheduler=scheduler, n_importance=n_importance, bars=tty_bar and jobs > 1):
            rec = store.save(rec, est)
            name = f"{rec.model}-q{rec.latent_dim}-r{rec.repeat}"
            done[name] = rec
            if rec.latent_dim == fig_q and rec.repeat == 0:
                kept[rec.model] = est
            n_done += 1
            bar.update(1)
            bar.set_postfix_str(name)
            if on_run is not None:
                on_run(rec, n_done, len(tasks), False)
    finally:
        bar.close()
    logger.info("fitted %d runs in %.1f s", len(pending), time.perf_counter() - t0)
    runs = [done[t.name] for t in tasks]
    with warnings.catch_warnings():  # the fitted models carry the data's feature names; arrays follow them
        warnings.filterwarnings("ignore", message=UNNAMED_INPUT_WARNING, category=UserWarning)
        return _assemble(ds, splits, names, dims, fig_q, runs, kept, store, policy, locals_=dict(
            repeats=repeats, cv=cv, epochs=epochs, max_epochs=max_epochs, epochs_of=epochs_of, schedules=schedules,
            lr=lr, hidden=hidden,
            test_size=test_size, seed=seed, device=device,
            n_importance=n_importance, backend=backend, jobs=jobs, dim_reason=dim_reason, missing=missing))


def _per_model(names, key: str, params: dict, default) -> dict:
    """``{name: params[name][key] or default(name)}`` over the models whose class takes ``key``."""
    return {n: params[n].get(key, default(n)) for n in names if key in _accepted(MODELS[n])}


def _of(names, values: dict | None) -> dict | None:
    """``values`` of the models in ``names`` (those fitted); None for none."""
    return {k: v for k, v in (values or {}).items() if k in names} or None


def _one_or_per_model(values: dict | None):
    """The value every model shares, "per model" where they differ, None for none."""
    distinct = set((values or {}).values())
    return None if not distinct else distinct.pop() if len(distinct) == 1 else "per model"


def _missing_values(names, X, overrides, meta):
    """Data with NaN: the models that can fit them (in the settings that can) and the
    reasons the others are left out (:mod:`.missing`)."""
    if not has_missing(X):
        return names, {"n": 0, "params": {}, "left_out": {}}
    n = int(np.isnan(X).sum())
    params, left_out = {}, {}
    for name in names:
        spec = MODELS[name]
        extra = missing_value_params(spec.cls, {**spec.params, **overrides(name)})
        if extra is None:
            left_out[name] = cannot_take_missing(name, n)
        else:
            params[name] = extra
    kept = [m for m in names if m not in left_out]
    if not kept:
        raise ValueError(f"{meta.get('source')}: no model of {', '.join(names)} can fit data with missing "
                         f"values ({n} entries); try --models ppca (EM marginalises them)")
    return kept, {"n": n, "params": params, "left_out": left_out, "size": X.size}



def _assemble(ds, splits, names, dims, fig_q, runs, kept, store, policy, locals_) -> Comparison:
    from ..linear.evidence import choose_latent_dim
    from ..realism import two_sample_accuracy

    X_train, y_train, X_test, y_test = ds.split(splits[0])
    results = []
    for rec in runs:
        if rec.latent_dim == fig_q and rec.repeat == 0:
            est = kept[rec.model] if rec.model in kept else store.model(rec)
            results.append(ModelResult(rec.model, est, rec.metrics, rec.fit_time_s, rec.params))
    summary = summarize(runs, order=names)
    comparisons = compare(runs)
    missing = locals_["missing"]
    try:
        evidence_q = None if missing["n"] else choose_latent_dim(X_train)
    except ValueError:
        evidence_q = None
    meta = {**ds.meta, "n_train": int(len(X_train)), "n_test": int(len(X_test)), "test_source": ds.test_source}
    L = locals_
    schedules = _of(names, L["schedules"])
    setup = {"seed": L["seed"], "models": names, "latent_dims": dims, "latent_dim": fig_q,
             **({"latent_dim_choice": L["dim_reason"]} if L["dim_reason"] else {}),
             "repeats": L["repeats"], "cv": L["cv"], "n_runs": len(runs), "epochs": L["epochs"],
             "max_epochs": L["max_epochs"], "lr_schedule": _one_or_per_model(schedules),
             "lr_schedule_by_model": schedules, "lr": _of(names, L["lr"]),
             "max_epochs_by_model": _of(names, L["epochs_of"]),
             "hidden": list(L["hidden"]) if L["hidden"] else None,
             "test_size": None if (ds.official_test or L["cv"]) else L["test_size"],
             "test_source": ds.test_source, "n_train": meta["n_train"], "n_test": meta["n_test"],
             "split": _split_text(ds, L), "significance": TEST, "device": _device_description(L["device"]),
             "likelihood": policy.likelihood, "likelihood_reason": policy.reason,
             "likelihood_policy": policy.as_dict(), "n_importance": L["n_importance"],
             "backend": L["backend"], "jobs": L["jobs"], "versions": versions()}
    if "preprocess" in ds.meta:
        setup["preprocess"] = ds.meta["preprocess"]
    if missing["n"]:
        setup["missing_values"] = f"{missing['n']} missing entries ({missing['n'] / missing['size']:.1%} of the data)"
        setup["left_out"] = missing["left_out"]
    sentences = verdict(summary, comparisons, runs, names=METRIC_LABELS, ppca_evidence_q=evidence_q)
    filled = fill_column_means if missing["n"] else (lambda A: A)  # distances need every coordinate
    # real vs real: the ideal, as measured
    ref = two_sample_accuracy(filled(X_test), filled(X_train), random_state=L["seed"])
    imputation = None
    # data with missing values: how each model fills them (memory maps hold none: the models check)
    if not is_mapped(X_train) and (np.isnan(X_train).any() or np.isnan(X_test).any()):
        imputation = imputation_table({r.name: r.model for r in results}, X_train, X_test, seed=L["seed"],
                                      n_importance=L["n_importance"])
    if is_mapped(X_train) or is_mapped(X_test):  # the figures draw a bounded subset; the metrics used every row
        (X_train, y_train), (X_test, y_test), setup["figure_rows"] = figure_subset(
            (X_train, y_train), (X_test, y_test), seed=L["seed"])
    return Comparison(meta, X_train, y_train, X_test, y_test, results, setup, ref, runs=runs, summary=summary,
                      comparisons=comparisons, verdict=sentences, ppca_evidence_q=evidence_q, figure_q=fig_q,
                      imputation=imputation)


def _split_text(ds, L) -> str:
    if ds.official_test:
        return f"train on every training row, test on the {ds.test_source} test set; repeats differ by seed"
    if L["cv"]:
        return f"{L['cv']}-fold cross-validation (stratified when labels allow), {L['repeats']} time(s)"
    return (f"repeated stratified holdout: {L['repeats']} split(s) holding out {L['test_size']:g}, "
            f"seed {L['seed']} + repeat")
