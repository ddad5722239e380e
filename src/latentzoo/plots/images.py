"""Decoded data as pictures: tiled image grids, reconstructions, prior samples, interpolations.

Every picture of decoded vectors goes through :func:`image_grid` (images) or
:func:`plot_vectors` (other data), so all of them look alike.
"""
from __future__ import annotations

import math

import numpy as np

from ._style import FIGSIZE, IMAGE_CMAP, PAD_COLOR, PALETTE, as_model_dict, model_name, subplots
from .features import MAX_HEATMAP_FEATURES, MAX_LINE_FEATURES, interpolation_heatmap, reconstruction_scatter

__all__ = ["resolve_image_shape", "tile_images", "image_grid", "plot_vectors", "reconstructions",
           "samples", "interpolations"]


def resolve_image_shape(image_shape, n_features: int, model=None):
    """The ``(h, w)`` of the data, or None when they are not images.

    ``image_shape`` wins; else the model's own ``image_shape`` parameter (convolutional
    networks have one). A singleton channel axis, ``(1, h, w)`` or ``(h, w, 1)``, is dropped.

    Raises
    ------
    ValueError
        When ``h * w`` is not the number of features.
    """
    if image_shape is None and model is not None:
        image_shape = getattr(model, "image_shape", None)
    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 3 and 1 in (shape[0], shape[2]):
        shape = shape[1:] if shape[0] == 1 else shape[:2]
    if len(shape) != 2 or shape[0] * shape[1] != n_features:
        raise ValueError(f"image_shape={tuple(image_shape)} does not match the {n_features} features "
                         "of the data (expected (height, width) with height * width == n_features)")
    return shape


def _as_images(images, image_shape=None) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        return images
    if images.ndim != 2:
        raise ValueError(f"images: expected shape (n, h*w) or (n, h, w), got {images.shape}")
    shape = resolve_image_shape(image_shape, images.shape[1])
    if shape is None:
        raise ValueError("images of shape (n, h*w) need image_shape=(h, w)")
    return images.reshape(len(images), *shape)


def tile_images(images, ncols: int, *, pad: int = 1, image_shape=None) -> np.ndarray:
    """Tile ``n`` images into one array, row-major, with ``pad`` NaN pixels between them.

    Image ``k`` occupies rows ``r*(h+pad)+pad : r*(h+pad)+pad+h`` and columns
    ``c*(w+pad)+pad : ...`` with ``r, c = divmod(k, ncols)``; unused cells stay NaN.
    """
    imgs = _as_images(images, image_shape)
    n, h, w = imgs.shape
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), np.nan)
    for k in range(n):
        r, c = divmod(k, ncols)
        out[r * (h + pad) + pad: r * (h + pad) + pad + h, c * (w + pad) + pad: c * (w + pad) + pad + w] = imgs[k]
    return out


def image_grid(images, ncols=None, ax=None, *, image_shape=None, pad=1, cmap=IMAGE_CMAP,
               vmin=None, vmax=None, title=None):
    """Show ``images`` (n, h*w) or (n, h, w) tiled in one array on ``ax``.

    Parameters
    ----------
    images : array of shape (n, h*w) or (n, h, w)
    ncols : int, optional
        Images per row, default ``ceil(sqrt(n))``.
    ax : matplotlib Axes, optional
    image_shape : (h, w), needed for flat images
    pad : int, default=1
        Gap in pixels between images (drawn in the pad colour).
    vmin, vmax : float, optional
        Grey-level range, default the images' range (shared by all of them).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    imgs = _as_images(images, image_shape)
    ncols = ncols or math.ceil(math.sqrt(len(imgs)))
    tiled = tile_images(imgs, ncols, pad=pad)
    if ax is None:
        _, ax = subplots(figsize=FIGSIZE["grid"])
    cm = matplotlib.colormaps[cmap].with_extremes(bad=PAD_COLOR)
    vmin = float(np.nanmin(imgs)) if vmin is None else vmin
    vmax = float(np.nanmax(imgs)) if vmax is None else vmax
    ax.imshow(tiled, cmap=cm, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title)
    return ax.figure


def plot_vectors(ax, rows, *, labels=None, colors=None, styles=None):
    """Non-image data: each vector as a line over the feature index (markers if few features)."""
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    d = rows.shape[1]
    marker = "o" if d <= 30 else None
    for i, r in enumerate(rows):
        ax.plot(np.arange(d), r, marker=marker, markersize=3,
                color=None if colors is None else colors[i],
                linestyle="-" if styles is None else styles[i],
                label=None if labels is None else labels[i], linewidth=1.2)
    ax.set_xlabel("feature")
    ax.set_ylabel("value")


def _row_label(ax, text):
    ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize="medium")


def _decode(model, X):
    return np.asarray(model.inverse_transform(model.transform(X)), dtype=np.float64)


def reconstructions(models, X, n=8, image_shape=None, *, title=None):
    """Originals (first row) and each model's reconstruction ``decode(encode(x))`` (one row each).

    Parameters
    ----------
    models : dict of name -> fitted model, or one fitted model
    X : array of shape (n_samples, n_features); the first ``n`` rows are shown
    n : int, default=8
    image_shape : (h, w), optional
        Show images when the data are images (or the model has an ``image_shape``);
        otherwise each sample gets a panel with the original and the reconstructions
        as lines over the feature index (2-D data: points in the plane, each joined to
        its reconstructions); more than 30 features: every observed entry of the ``n``
        rows against its reconstruction, one panel per model, with the R² in the title
        (:func:`latentzoo.plots.features.reconstruction_scatter`).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    models = as_model_dict(models)
    X = np.asarray(X, dtype=np.float64)[:n]
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"X: expected a non-empty 2-D array, got shape {np.shape(X)}")
    shape = resolve_image_shape(image_shape, X.shape[1], next(iter(models.values())))
    if shape is None and X.shape[1] > MAX_LINE_FEATURES:
        return reconstruction_scatter(models, X, title=title)
    recs = {name: _decode(m, X) for name, m in models.items()}
    title = title or f"Reconstructions of {len(X)} samples"
    if shape is not None:
        rows = {"original": X, **recs}
        vmin, vmax = float(X.min()), float(X.max())
        fig, axes = subplots(len(rows), 1, figsize=(max(4.0, 0.75 * len(X) + 1.5), 0.85 * len(rows) + 0.6),
                             squeeze=False)
        for ax, (name, R) in zip(axes[:, 0], rows.items()):
            image_grid(R, ncols=len(X), ax=ax, image_shape=shape, vmin=vmin, vmax=vmax)
            _row_label(ax, name)
        fig.suptitle(title)
        return fig
    if X.shape[1] == 2:
        return _reconstructions_2d(X, recs, title)
    ncols = min(len(X), 4)
    nrows = math.ceil(len(X) / ncols)
    fig, axes = subplots(nrows, ncols, figsize=(3.0 * ncols, 2.4 * nrows + 0.6), squeeze=False)
    labels = ["original", *recs]
    colors = ["black", *PALETTE[: len(recs)]]
    styles = ["-", *["--"] * len(recs)]
    for k, ax in enumerate(axes.ravel()):
        if k >= len(X):
            ax.set_visible(False)
            continue
        plot_vectors(ax, [X[k], *(R[k] for R in recs.values())], labels=labels, colors=colors, styles=styles)
        ax.set_title(f"sample {k}", fontsize="medium")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle(title)
    return fig


def _reconstructions_2d(X, recs, title):
    """2-D data: originals and reconstructions in the plane, each joined to its original."""
    from matplotlib.collections import LineCollection

    fig, ax = subplots(figsize=FIGSIZE["square"])
    ax.scatter(X[:, 0], X[:, 1], color="black", s=25, label="original", zorder=3)
    for i, (name, R) in enumerate(recs.items()):
        color = PALETTE[i % len(PALETTE)]
        ax.add_collection(LineCollection(np.stack([X, R], axis=1), colors=color, linewidths=0.8, alpha=0.6))
        ax.scatter(R[:, 0], R[:, 1], color=color, s=25, marker="s", label=name, zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(title)
    return fig


def samples(model, n=16, image_shape=None, random_state=0, *, ax=None, vmin=None, vmax=None, title=None,
            mean=None, feature_names=None):
    """``n`` draws from the model's generative distribution (``model.sample``) as an image grid.

    ``mean=True`` shows the decoder means E[x|z] of prior draws z, ``mean=False`` full
    draws x ~ p(x|z) with the observation noise (same z for the same ``random_state``);
    None: the model's own default. ``vmin``/``vmax`` set the grey-level range (default:
    the samples' range). Non-image data: 2-D samples as points in the plane, up to 30
    features as lines over the feature index, wider tables as a heatmap of the samples
    over the 20 features they vary most (named by the model's ``feature_names_in_``).

    Raises
    ------
    ValueError
        For models without a prior to sample from (PCA, plain autoencoders).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not getattr(model, "has_prior", False):
        raise ValueError(f"samples() needs a generative model with sample() (PPCA, VAE); "
                         f"{model_name(model)} has no prior to sample from")
    kw = {} if mean is None else {"mean": bool(mean)}
    S = np.asarray(model.sample(n, random_state=random_state, **kw), dtype=np.float64)
    shape = resolve_image_shape(image_shape, S.shape[1], model)
    title = title or f"{model_name(model)}: {n} samples from the model"
    if shape is not None:
        if ax is None:
            _, ax = subplots(figsize=FIGSIZE["grid"])
        return image_grid(S, ax=ax, image_shape=shape, vmin=vmin, vmax=vmax, title=title)
    if ax is None:
        _, ax = subplots(figsize=FIGSIZE["square"] if S.shape[1] == 2 else FIGSIZE["wide"])
    if S.shape[1] == 2:
        ax.scatter(S[:, 0], S[:, 1], s=10, color=PALETTE[0], alpha=0.7, linewidths=0)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_aspect("equal", adjustable="datalim")
    elif S.shape[1] > MAX_LINE_FEATURES:  # a wide table: samples x the features they vary most, by name
        names = feature_names if feature_names is not None else getattr(model, "feature_names_in_", None)
        names = [str(v) for v in names] if names is not None else [f"x{j}" for j in range(S.shape[1])]
        cols = np.sort(np.argsort(-S.var(axis=0), kind="stable")[:MAX_HEATMAP_FEATURES // 2])
        im = ax.imshow(S[:, cols], aspect="auto", cmap="viridis", interpolation="nearest")  # the samples' own range
        ax.set_xticks(np.arange(len(cols)), [names[j] for j in cols], rotation=90, fontsize="x-small")
        ax.set_ylabel("sample")
        ax.figure.colorbar(im, ax=ax, shrink=0.8)
    else:
        plot_vectors(ax, S, colors=[PALETTE[0]] * len(S))
    ax.set_title(title)
    return ax.figure


def _path(model, x_a, x_b, steps):
    """Decoded path from ``x_a`` to ``x_b``: the decoded linear interpolation of the codes
    ``(1 - t) z_a + t z_b`` (for the VAE the posterior means, as ``VAE.interpolate``)."""
    Z = np.asarray(model.transform(np.vstack([np.ravel(x_a), np.ravel(x_b)])), dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    out = np.asarray(model.inverse_transform((1 - t) * Z[0] + t * Z[1]), dtype=np.float64)
    return out.reshape(steps, -1)


#: the colour of the frame around real (data) images shown beside decoded ones
DATA_FRAME = "#2ca02c"


def _frame(ax, title=None):
    """Mark ``ax`` as showing real data: a thin coloured frame (and ``title``)."""
    for s in ax.spines.values():
        s.set_visible(True)
        s.set_edgecolor(DATA_FRAME)
        s.set_linewidth(2.0)
    if title:
        ax.set_title(title, fontsize="small", color=DATA_FRAME)


def _image_paths(paths: dict, x_a, x_b, shape, title):
    """One row per model: the real ``x_a`` (framed), the decoded path, the real ``x_b`` (framed)."""
    ends = np.vstack([x_a, x_b])
    lo = min(float(np.nanmin(ends)), *(float(np.min(P)) for P in paths.values()))
    hi = max(float(np.nanmax(ends)), *(float(np.max(P)) for P in paths.values()))
    steps = next(iter(paths.values())).shape[0]
    fig, axes = subplots(len(paths), 3, figsize=(max(4.0, 0.7 * (steps + 2) + 1.9), 0.85 * len(paths) + 0.8),
                         squeeze=False, gridspec_kw={"width_ratios": [1, steps, 1]})
    for i, (name, P) in enumerate(paths.items()):
        start, path, end = axes[i]
        image_grid(x_a, ncols=1, ax=start, image_shape=shape, vmin=lo, vmax=hi)
        image_grid(P, ncols=steps, ax=path, image_shape=shape, vmin=lo, vmax=hi)
        image_grid(x_b, ncols=1, ax=end, image_shape=shape, vmin=lo, vmax=hi)
        _frame(start, "start (data)" if i == 0 else None)
        _frame(end, "end (data)" if i == 0 else None)
        _row_label(start, name)
    axes[0, 1].set_title("decoded path", fontsize="small")
    axes[-1, 1].set_xlabel("t = 0  \u2192  t = 1")
    fig.suptitle(title)
    return fig


def interpolations(models, x_a, x_b, steps=10, image_shape=None, *, title=None, feature_names=None):
    """Decoded points between two inputs, one row per model (t = 0 at the left, 1 at the right).

    Parameters
    ----------
    models : dict of name -> fitted model, or one fitted model
    x_a, x_b : array of shape (n_features,)
    steps : int, default=10
    image_shape : (h, w), optional
        Images: one row per model, the decoded images between the two real inputs
        themselves (framed, "start (data)" and "end (data)"), all on one grey scale. Other data with more than two
        features: a heatmap per model (steps x the features that change most), the
        features named by ``feature_names`` (default: the model's ``feature_names_in_``).
    feature_names : sequence of str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    models = as_model_dict(models)
    x_a = np.asarray(x_a, dtype=np.float64).reshape(1, -1)
    x_b = np.asarray(x_b, dtype=np.float64).reshape(1, -1)
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_a and x_b must have the same number of features, got {x_a.shape[1]} and {x_b.shape[1]}")
    if int(steps) < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    paths = {name: _path(m, x_a, x_b, int(steps)) for name, m in models.items()}
    shape = resolve_image_shape(image_shape, x_a.shape[1], next(iter(models.values())))
    title = title or f"Interpolation between two inputs in latent space ({steps} steps)"
    if shape is not None:
        return _image_paths(paths, x_a, x_b, shape, title)
    if x_a.shape[1] > 2:
        first = next(iter(models.values()))
        names = feature_names if feature_names is not None else getattr(first, "feature_names_in_", None)
        return interpolation_heatmap(paths, x_a, x_b, feature_names=names, title=title)
    import matplotlib

    fig, axes = subplots(1, len(paths), figsize=(4.2 * len(paths), 3.8), squeeze=False)
    cmap = matplotlib.colormaps["viridis"]
    t = np.linspace(0, 1, int(steps))
    for ax, (name, P) in zip(axes[0], paths.items()):
        if P.shape[1] == 2:
            ax.plot(P[:, 0], P[:, 1], color="0.6", linewidth=1, zorder=1)
            ax.scatter(P[:, 0], P[:, 1], c=t, cmap=cmap, s=25, zorder=2)
            ax.scatter(*np.vstack([x_a, x_b]).T, marker="x", color="black", s=40, label="inputs", zorder=3)
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
            ax.legend(frameon=False, fontsize="small")
        else:
            plot_vectors(ax, P, colors=[cmap(v) for v in t])
        ax.set_title(name, fontsize="medium")
    fig.colorbar(matplotlib.cm.ScalarMappable(cmap=cmap), ax=axes[0, -1], label="t")
    fig.suptitle(title)
    return fig
