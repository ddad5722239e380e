"""Figures for tables (non-image data): which features drive each latent unit, observed
versus reconstructed values, interpolations as heatmaps; features named by their names.

The features that drive latent unit ``u`` are read off the decoder: ``J = d E[x|z] / dz``,
the Jacobian of ``inverse_transform``, averaged over the codes of the data
(:func:`feature_drivers`). For PCA and PPCA the decoder is linear and ``J`` is exactly the
loadings matrix (``components_.T`` for PCA, ``W`` for PPCA, Tipping & Bishop 1999); for
the neural decoders it is the average local sensitivity of each decoded feature to the
unit, measured by central differences of the decoder on the model's own codes.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from ._style import PALETTE, as_model_dict, panel_grid, subplots

__all__ = ["feature_drivers", "drivers_figure", "reconstruction_scatter", "interpolation_heatmap",
           "feature_labels"]

#: more features than this: reconstructions as a scatter of observed vs reconstructed values
MAX_LINE_FEATURES = 30
#: features shown in an interpolation heatmap (those that change most along the path)
MAX_HEATMAP_FEATURES = 40


def feature_labels(feature_names, n_features: int) -> list[str]:
    """The names to show: ``feature_names`` when given (one per feature), else ``x0, x1, ...``."""
    if feature_names is None:
        return [f"x{j}" for j in range(n_features)]
    names = [str(v) for v in feature_names]
    if len(names) != n_features:
        raise ValueError(f"feature_names has {len(names)} names but the data have {n_features} features")
    return names


def _names_of(model, feature_names, n_features):
    if feature_names is None:
        feature_names = getattr(model, "feature_names_in_", None)
    return feature_labels(feature_names, n_features)


def feature_drivers(model, X, *, n_points: int = 200, random_state=0) -> np.ndarray:
    """Decoder Jacobian averaged over the data: ``(n_features, n_latent)``, column ``u`` the
    change of every decoded feature per unit change of latent unit ``u``.

    ``J[:, u] = mean_i (g(z_i + h_u e_u) - g(z_i - h_u e_u)) / (2 h_u)`` over the codes
    ``z_i`` of up to ``n_points`` rows of ``X``, with ``g`` the model's ``inverse_transform``
    and ``h_u`` 1e-3 of the codes' spread in unit ``u``: exact for linear decoders (PCA's
    ``components_.T``, PPCA's ``W``), second-order accurate for the neural ones.
    """
    if not hasattr(X, "iloc"):  # a DataFrame stays one: the model checks its feature names
        X = np.asarray(X)
    if len(X) > n_points:
        idx = np.sort(np.random.default_rng(random_state).choice(len(X), n_points, replace=False))
        X = X.iloc[idx] if hasattr(X, "iloc") else X[idx]
    Z = np.asarray(model.transform(X), dtype=np.float64)
    n, q = Z.shape
    spread = Z.std(axis=0)
    J = []
    for u in range(q):
        h = 1e-3 * (spread[u] if spread[u] > 0 else 1.0)
        step = np.zeros(q)
        step[u] = h
        up = np.asarray(model.inverse_transform(Z + step), dtype=np.float64)
        down = np.asarray(model.inverse_transform(Z - step), dtype=np.float64)
        J.append(((up - down) / (2 * h)).mean(axis=0))
    return np.stack(J, axis=1)


def _driver_kind(model) -> str:
    return "loadings" if hasattr(model, "components_") else "mean decoder Jacobian"


def drivers_figure(model, X, *, feature_names=None, top: int = 10, max_units: int = 4, title=None,
                   name: str | None = None):
    """Per latent unit, the ``top`` features with the largest ``|J[:, u]|`` as signed bars, by name.

    Parameters
    ----------
    model : fitted latentzoo model
    X : array of shape (n_samples, n_features)
        Data whose codes the Jacobian is averaged over (linear models: any).
    feature_names : sequence of str, optional
        Default: the model's ``feature_names_in_``, else ``x0, x1, ...``.
    top : int, default=10
    max_units : int, default=4
        Latent units shown (the first ones).
    name : str, optional
        The model's name in the title (a report's registry name, e.g. ``"dae"``); default its class name.

    Returns
    -------
    matplotlib.figure.Figure
    """
    J = feature_drivers(model, X)
    names = _names_of(model, feature_names, J.shape[0])
    units = min(J.shape[1], max_units)
    top = min(top, J.shape[0])
    fig, axes = subplots(1, units, figsize=(3.3 * units + 0.6, 0.28 * top + 1.4), squeeze=False)
    for u, ax in enumerate(axes[0]):
        order = np.argsort(-np.abs(J[:, u]), kind="stable")[:top][::-1]  # largest at the top
        vals = J[order, u]
        ax.barh(np.arange(top), vals, color=[PALETTE[0] if v >= 0 else PALETTE[3] for v in vals])
        ax.set_yticks(np.arange(top), [names[j] for j in order], fontsize="small")
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(f"latent unit {u}", fontsize="medium")
        ax.set_xlabel("dx / dz")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, symmetric=True))  # 5 labels at most: no overlap
    who = name or type(model).__name__
    fig.suptitle(title or f"{who}: features driving each latent unit ({_driver_kind(model)})")
    return fig


def r_squared(X, R) -> float:
    """``1 - sum (x - r)^2 / sum (x - mean_j)^2`` over the observed entries (per-feature means)."""
    X, R = np.asarray(X, dtype=np.float64), np.asarray(R, dtype=np.float64)
    ok = ~np.isnan(X)
    mean = np.nanmean(X, axis=0)
    ss_res = float(np.sum(np.where(ok, X - R, 0.0) ** 2))
    ss_tot = float(np.sum(np.where(ok, X - mean, 0.0) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def reconstruction_scatter(models, X, *, max_points: int = 20000, random_state=0, title=None, max_cols: int = 4):
    """One panel per model (at most ``max_cols`` a row): every observed entry of ``X``
    against its reconstruction, the diagonal ``y = x`` and the R² of the reconstruction
    (:func:`r_squared`)."""
    models = as_model_dict(models)
    X = np.asarray(X, dtype=np.float64)
    fig, axes = panel_grid(len(models), size=3.4, max_cols=max_cols)
    rng = np.random.default_rng(random_state)
    obs = X[~np.isnan(X)]
    lo, hi = (float(obs.min()), float(obs.max())) if obs.size else (0.0, 1.0)
    for ax, (name, m) in zip(axes, models.items()):
        R = np.asarray(m.inverse_transform(m.transform(X)), dtype=np.float64)
        ok = np.flatnonzero(~np.isnan(X).ravel())
        pick = ok if ok.size <= max_points else rng.choice(ok, max_points, replace=False)
        ax.scatter(X.ravel()[pick], R.ravel()[pick], s=3, alpha=0.25, color=PALETTE[0], linewidths=0,
                   rasterized=True)
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
        ax.set_title(f"{name}: R\u00b2 = {r_squared(X, R):.3f}", fontsize="medium")
        ax.set_xlabel("observed")
        ax.set_ylabel("reconstructed")
    fig.suptitle(title or f"Observed vs reconstructed values ({X.shape[0]} samples x {X.shape[1]} features)")
    return fig


def interpolation_heatmap(paths: dict, x_a, x_b, *, feature_names=None, title=None):
    """One heatmap per model: decoded features (columns) along the path (rows, t = 0 at the
    top), the :data:`MAX_HEATMAP_FEATURES` features the decoded paths change most."""
    x_a, x_b = np.ravel(x_a), np.ravel(x_b)
    names = feature_labels(feature_names, x_a.size)
    first = next(iter(paths.values()))
    # the features the decoded paths move most (summed over models), ties broken by the inputs' change
    change = sum(np.abs(P[-1] - P[0]) for P in paths.values()) + 1e-9 * np.nan_to_num(np.abs(x_b - x_a), nan=0.0)
    cols = np.sort(np.argsort(-change, kind="stable")[:MAX_HEATMAP_FEATURES])
    lo = min(float(np.min(P[:, cols])) for P in paths.values())
    hi = max(float(np.max(P[:, cols])) for P in paths.values())
    steps = first.shape[0]
    fig, axes = subplots(len(paths), 1, figsize=(max(6.0, 0.22 * len(cols) + 2.5), 1.0 + (0.2 * steps + 0.6) * len(paths)),
                         squeeze=False)
    for ax, (name, P) in zip(axes[:, 0], paths.items()):
        im = ax.imshow(P[:, cols], aspect="auto", cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1,
                       interpolation="nearest")
        ax.set_yticks([0, steps - 1], ["t=0", "t=1"])
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
        ax.set_xticks([])
    ticks = np.arange(len(cols))
    axes[-1, 0].set_xticks(ticks, [names[j] for j in cols], rotation=90, fontsize="x-small")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="decoded value", shrink=0.8)
    fig.suptitle(title or f"Decoded interpolation between two inputs ({len(cols)} features the paths change most)")
    return fig
