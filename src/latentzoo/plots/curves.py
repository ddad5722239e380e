"""Curves: training histories of the neural models, PCA's explained variance."""
from __future__ import annotations

import logging

import numpy as np

from ._style import FIGSIZE, PALETTE, as_model_dict, figure_and_axes, model_name

__all__ = ["training_curves", "explained_variance", "explained_variance_ratio", "latent_sweep", "eigen_spectrum"]

logger = logging.getLogger(__name__)


def training_curves(models, *, ax=None, title=None):
    """Training (solid) and validation (dashed) loss per epoch from each model's ``history_``.

    The best epoch (``history_["best_epoch"]``, 1-based, the weights kept by early
    stopping) is marked with a star. The y axis is logarithmic when every loss is
    positive. Models without a ``history_`` (closed-form fits such as PCA) are skipped
    with a log message.

    Parameters
    ----------
    models : dict of name -> fitted model, or one fitted model
    ax : matplotlib Axes, optional
    title : str, optional

    Raises
    ------
    ValueError
        When no model has a training history.

    Returns
    -------
    matplotlib.figure.Figure
    """
    models = as_model_dict(models)
    histories = {name: m.history_ for name, m in models.items() if isinstance(getattr(m, "history_", None), dict)}
    skipped = [name for name in models if name not in histories]
    if skipped:
        logger.info("training_curves: no history_ (not trained iteratively) for %s", ", ".join(skipped))
    if not histories:
        raise ValueError(f"training_curves needs models trained by epochs (with history_); none of "
                         f"{', '.join(models)} has one")
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["wide"])
    all_losses = []
    for i, (name, h) in enumerate(histories.items()):
        color = PALETTE[i % len(PALETTE)]
        train = np.asarray(h.get("train_loss", []), dtype=float)
        val = np.asarray(h.get("val_loss", []), dtype=float)
        all_losses += [train, val]
        if len(train):
            ax.plot(np.arange(1, len(train) + 1), train, color=color, label=f"{name} train")
        if len(val):
            ax.plot(np.arange(1, len(val) + 1), val, color=color, linestyle="--", label=f"{name} validation")
        best = h.get("best_epoch")
        ref = val if len(val) else train
        if best is not None and 1 <= int(best) <= len(ref):
            ax.plot([int(best)], [ref[int(best) - 1]], marker="*", markersize=12, color=color,
                    markeredgecolor="black", linestyle="", gid="best_epoch",
                    label=f"{name} best epoch ({int(best)})")
    values = np.concatenate(all_losses) if all_losses else np.empty(0)
    if values.size and np.all(values[np.isfinite(values)] > 0):
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per sample")
    ax.legend(fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(title or "Training curves (solid: training, dashed: validation)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def explained_variance_ratio(model) -> np.ndarray:
    """Share of the total variance carried by each component.

    PCA: its ``explained_variance_ratio_``. PPCA: ``lambda_i / trace(C)`` of the model
    covariance ``C = W W^T + sigma2 I``, whose trace is ``sum_i lambda_i + (d - q) sigma2``
    (for the closed-form fit that is the sample covariance's trace, so the ratios equal
    PCA's).
    """
    ratio = getattr(model, "explained_variance_ratio_", None)
    if ratio is not None:
        return np.asarray(ratio, dtype=float)
    ev = getattr(model, "explained_variance_", None)
    s2 = getattr(model, "noise_variance_", None)
    d = getattr(model, "n_features_in_", None)
    if ev is None or s2 is None or d is None:
        raise ValueError(f"explained_variance needs a fitted linear model (PCA, PPCA); {model_name(model)} "
                         "has no explained_variance_ratio_ / explained_variance_")
    ev = np.asarray(ev, dtype=float)
    return ev / (ev.sum() + (int(d) - len(ev)) * float(s2))


def explained_variance(pca_model, ax=None, *, title=None):
    """Bars of the explained-variance ratio per component and the cumulative curve.

    Parameters
    ----------
    pca_model : fitted PCA or PPCA
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    ratio = explained_variance_ratio(pca_model)
    k = np.arange(1, len(ratio) + 1)
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["wide"])
    ax.bar(k, ratio, color=PALETTE[0], label="per component")
    cum = np.cumsum(ratio)
    ax.plot(k, cum, color=PALETTE[1], marker="o", markersize=4, label="cumulative", gid="cumulative")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("component")
    ax.set_ylabel("explained variance ratio")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, loc="center right")
    ax.set_title(title or f"{model_name(pca_model)}: explained variance "
                          f"({len(ratio)} components, {100 * cum[-1]:.1f}% in total)")
    return fig


def latent_sweep(rows, metric: str, *, ax=None, title=None, evidence_q=None, label=None):
    """A metric against the latent dimension q: one line per model, error bars of one sd.

    Parameters
    ----------
    rows : list of dict
        Summary rows of an experiment (``model``, ``latent_dim``, the metric's mean and
        ``std[metric]``), as in metrics.json's ``models``.
    metric : str
    evidence_q : int, optional
        PPCA's choice of q by Minka's (2000) evidence, drawn as a dotted vertical line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(5.2, 3.6))
    models = list(dict.fromkeys(r["model"] for r in rows))
    drawn = 0
    for i, name in enumerate(models):
        pts = sorted((r["latent_dim"], r.get(metric), (r.get("std") or {}).get(metric))
                     for r in rows if r["model"] == name and r.get(metric) is not None)
        if not pts:
            continue
        q, v, s = zip(*pts)
        err = [0.0 if e is None else e for e in s]
        ax.errorbar(q, v, yerr=err, marker="o", ms=4, capsize=3, lw=1.4, color=PALETTE[i % len(PALETTE)],
                    label=name)
        drawn += 1
    if not drawn:
        raise ValueError(f"no model has a value of {metric!r} to draw")
    qs = sorted({r["latent_dim"] for r in rows})
    if len(qs) > 1 and qs[-1] / max(qs[0], 1) >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xticks(qs, [str(q) for q in qs])
    if evidence_q is not None and qs[0] / 2 <= evidence_q <= qs[-1] * 2:
        ax.axvline(evidence_q, color="k", ls=":", lw=1, label=f"PPCA evidence q={evidence_q}")
    ax.set_xlabel("latent dimension q")
    ax.set_ylabel(label or metric.replace("_", " "))
    ax.set_title(title or (label or metric.replace("_", " ")) + " vs q", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return fig


def eigen_spectrum(X, n_components: int, ax=None, *, title=None):
    """The whole eigen-spectrum of the sample covariance of ``X``, with the chosen ``q`` marked.

    Bars: the share of the total variance of every principal component (all
    ``min(n - 1, d)`` of them, from the singular values of the centred data); line: the
    cumulative share; a vertical line after component ``n_components`` shows what a
    ``q``-component PCA/PPCA keeps (its share is in the legend).

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"eigen_spectrum needs a 2-D array with at least 2 rows, got shape {X.shape}")
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    var = s ** 2 / len(X)
    var = var[: min(len(X) - 1, X.shape[1])]
    ratio = var / var.sum() if var.sum() > 0 else var
    q = int(n_components)
    k = np.arange(1, len(ratio) + 1)
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["wide"])
    # per-component shares on their own (right) axis: next to the cumulative curve they would
    # be invisible when the spectrum is flat (hundreds of components of ~1% each)
    bars = ax.twinx()
    bars.bar(k, ratio, width=1.0 if len(k) > 60 else 0.8, color=[PALETTE[0] if i <= q else "0.7" for i in k],
             label="per component (right axis; kept: coloured)")
    bars.set_ylim(0, 1.05 * float(ratio.max()) if ratio.max() > 0 else 1.0)
    bars.set_ylabel("share of one component")
    cum = np.cumsum(ratio)
    ax.plot(k, cum, color=PALETTE[1], label="cumulative (left axis)", gid="cumulative", zorder=3)
    ax.axvline(q + 0.5, color="k", ls="--", lw=1, gid="chosen_q",
               label=f"q = {q}: {100 * cum[min(q, len(cum)) - 1]:.1f}% of the variance")
    ax.set_zorder(bars.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlim(0.5, len(k) + 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("principal component")
    ax.set_ylabel("cumulative share of the total variance")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = bars.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, frameon=False, loc="center right")
    ax.set_title(title or f"Eigen-spectrum of the training data ({len(ratio)} components), q = {q} marked")
    return fig
