"""One look for every latentzoo figure: colours, sizes, and the few helpers that apply them.

Figures are created with :func:`matplotlib.pyplot.subplots` (``layout="constrained"``),
so they show with ``plt.show()`` in scripts and inline in notebooks; the plotting
functions never call ``show`` themselves. Callers that make many figures (the report)
close them, e.g. ``figure_to_png_bytes(fig, close=True)``.
"""
from __future__ import annotations

import numpy as np

#: qualitative colours, one per model / class (matplotlib's tab10)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
#: figure sizes in inches, by kind of figure
FIGSIZE = {"square": (5.5, 5.0), "wide": (8.0, 4.2), "grid": (6.0, 6.0)}
IMAGE_CMAP = "gray"        # images: white strokes on black (MNIST convention)
PAD_COLOR = "white"        # the gaps between tiled images
DENSITY_CMAP = "Blues"     # density backgrounds
CONTINUOUS_CMAP = "viridis"
POINT_SIZE = 12
UNLABELLED_COLOR = "#bbbbbb"  # rows without a label
MAX_DISCRETE_LABELS = 20   # more distinct labels than this: continuous colour bar


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kw):
    """``plt.subplots`` with the house layout (constrained), returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize or FIGSIZE["square"], layout="constrained", **kw)


def panel_grid(n: int, *, size: float = 3.2, height: float | None = None, max_cols: int = 4):
    """A figure of ``n`` panels, at most ``max_cols`` a row, each ``size`` x ``height``
    inches (default square); returns ``(fig, axes)``, ``axes`` the ``n`` used ones in
    row-major order (the cells left over in the last row are hidden)."""
    ncols = max(1, min(int(max_cols), n))
    nrows = -(-n // ncols)
    fig, axes = subplots(nrows, ncols, figsize=(size * ncols, (height or size) * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, list(axes.ravel()[:n])


def figure_and_axes(ax=None, *, figsize=None):
    """``(ax.figure, ax)`` for a given axes, else a new single-axes figure."""
    if ax is not None:
        return ax.figure, ax
    return subplots(figsize=figsize)


def model_name(model) -> str:
    return type(model).__name__


def as_model_dict(models) -> dict:
    """Accept ``{name: model}`` or one model (named by its class)."""
    if isinstance(models, dict):
        if not models:
            raise ValueError("models: expected at least one fitted model, got an empty dict")
        return dict(models)
    return {model_name(models): models}


def _is_discrete(y: np.ndarray) -> bool:
    if y.dtype.kind in "biuOUSb":
        return True
    if y.dtype.kind == "f":
        finite = y[np.isfinite(y)]
        return bool(np.all(finite == np.round(finite))) and len(np.unique(finite)) <= MAX_DISCRETE_LABELS
    return False


def label_encoding(y):
    """How labels ``y`` map to colours: ``(values, cmap, vmin, vmax, classes)``.

    Discrete labels (at most :data:`MAX_DISCRETE_LABELS` distinct values) become class
    indices on a qualitative map (``classes`` the sorted distinct labels); other labels
    are shown on a continuous map (``classes=None``).
    """
    import matplotlib
    from matplotlib.colors import ListedColormap

    y = np.asarray(y)
    classes = np.unique(y)
    if _is_discrete(y) and len(classes) <= MAX_DISCRETE_LABELS:
        base = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        cmap = ListedColormap([base(i) for i in range(len(classes))])
        return np.searchsorted(classes, y).astype(float), cmap, -0.5, len(classes) - 0.5, classes
    v = y.astype(float)
    return v, matplotlib.colormaps[CONTINUOUS_CMAP], float(np.nanmin(v)), float(np.nanmax(v)), None


def label_colors(y, n: int):
    """RGBA colour of each of the ``n`` rows, the same as :func:`scatter_labelled` gives them."""
    from matplotlib.colors import Normalize, to_rgba

    if y is None:
        return [to_rgba(PALETTE[0])] * n
    from ..data.labels import labelled_mask

    mask = labelled_mask(y)
    out = [to_rgba(UNLABELLED_COLOR)] * n
    if mask.any():
        values, cmap, vmin, vmax, _ = label_encoding(np.asarray(y)[mask])
        for i, c in zip(np.flatnonzero(mask), cmap(Normalize(vmin, vmax)(values))):
            out[i] = tuple(c)
    return out


def scatter_labelled(ax, P: np.ndarray, y=None, *, s=POINT_SIZE, alpha=0.8, extra_handles=(), **kw):
    """One scatter of the (n, 2) points ``P`` (offsets in row order), coloured by ``y``.

    Discrete labels get a qualitative colour map and a legend, other labels a
    continuous map and a colour bar, ``y=None`` one colour; ``extra_handles`` join the
    legend. Returns the ``PathCollection``.
    """
    from matplotlib.lines import Line2D

    legend_kw = dict(fontsize="small", title_fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5),
                     frameon=False, handletextpad=0.3)
    if y is None:
        coll = ax.scatter(P[:, 0], P[:, 1], s=s, alpha=alpha, color=PALETTE[0], linewidths=0, **kw)
        if extra_handles:
            ax.legend(handles=list(extra_handles), **legend_kw)
        return coll
    if np.shape(y)[0] != P.shape[0]:
        raise ValueError(f"y has {np.shape(y)[0]} labels but X has {P.shape[0]} rows")
    from ..data.labels import labelled_mask

    mask = labelled_mask(y)
    if not mask.all():  # unlabelled rows (empty / NA label cells): grey, under the labelled ones
        grey = ax.scatter(P[~mask, 0], P[~mask, 1], s=s, alpha=alpha * 0.6, color=UNLABELLED_COLOR,
                          linewidths=0, **kw)
        extra_handles = (*extra_handles, Line2D([], [], marker="o", linestyle="", color=UNLABELLED_COLOR,
                                                label="unlabelled"))
        if not mask.any():
            ax.legend(handles=list(extra_handles), **legend_kw)
            return grey
        P, y = P[mask], np.asarray(y)[mask]
        kw = {k: v for k, v in kw.items() if k != "label"}
    values, cmap, vmin, vmax, classes = label_encoding(y)
    coll = ax.scatter(P[:, 0], P[:, 1], c=values, cmap=cmap, vmin=vmin, vmax=vmax, s=s, alpha=alpha,
                      linewidths=0, **kw)
    if classes is None:
        ax.figure.colorbar(coll, ax=ax, label="label")
        if extra_handles:
            ax.legend(handles=list(extra_handles), fontsize="small", frameon=False)
        return coll
    handles = [Line2D([], [], marker="o", linestyle="", color=cmap(i), label=str(c))
               for i, c in enumerate(classes)]
    ax.legend(handles=handles + list(extra_handles), title="label", **legend_kw)
    return coll
