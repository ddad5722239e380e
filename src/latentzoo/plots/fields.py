"""Vector fields in data space: the score ``grad log p`` learned by a denoising autoencoder."""
from __future__ import annotations

import numpy as np

from ._style import DENSITY_CMAP, FIGSIZE, figure_and_axes, model_name

__all__ = ["score_field"]


def _log_density(density, X: np.ndarray):
    """``log p`` callable: the given density (an object with ``log_prob`` or a callable),
    else a Gaussian KDE of ``X``. Returns ``(fn, label)``."""
    if density is None:
        from scipy.stats import gaussian_kde

        kde = gaussian_kde(X.T)
        return (lambda P: kde.logpdf(P.T)), "KDE of the data"
    fn = getattr(density, "log_prob", density)
    if not callable(fn):
        raise ValueError("density must be a callable log p(x) or an object with log_prob(x), "
                         f"got {type(density).__name__}")
    return fn, "true density"


def score_field(model, X, density=None, grid=25, ax=None, *, margin=0.1, title=None):
    """The denoising autoencoder's score field as arrows over the data density (2-D data).

    A DAE trained with Gaussian noise of scale sigma learns ``r(x) - x ~ sigma^2
    grad log p(x)`` (Alain & Bengio 2014); ``model.score_field`` returns that estimate
    of ``grad log p``. It is drawn (``quiver``) on a ``grid x grid`` lattice over the
    data, above the density ``p``: the analytic one when ``density`` is given (e.g.
    :func:`latentzoo.data.synthetic.gaussian_mixture_density`), else a Gaussian KDE of X.

    Parameters
    ----------
    model : fitted model with ``score_field(X)`` (a Gaussian-noise DAE)
    X : array of shape (n_samples, 2)
    density : object with ``log_prob`` or callable, optional
    grid : int, default=25
    ax : matplotlib Axes, optional
    margin : float, default=0.1
        Fraction of the data range added on each side.

    Returns
    -------
    matplotlib.figure.Figure
        The arrows are the axes' ``Quiver`` (``X, Y, U, V``).
    """
    if not callable(getattr(model, "score_field", None)):
        raise ValueError(f"{model_name(model)} has no score_field: only a denoising autoencoder trained with "
                         "Gaussian noise estimates the score grad log p(x)")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"score_field draws 2-D data, X has shape {X.shape}")
    if int(grid) < 2:
        raise ValueError(f"grid must be at least 2, got {grid}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    g1, g2 = np.linspace(lo[0], hi[0], int(grid)), np.linspace(lo[1], hi[1], int(grid))
    G1, G2 = np.meshgrid(g1, g2)
    P = np.column_stack([G1.ravel(), G2.ravel()])
    S = np.asarray(model.score_field(P), dtype=np.float64)
    logp, label = _log_density(density, X)
    f1, f2 = np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120)
    F1, F2 = np.meshgrid(f1, f2)
    dens = np.exp(np.asarray(logp(np.column_stack([F1.ravel(), F2.ravel()])), dtype=np.float64))
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["square"])
    cs = ax.contourf(F1, F2, dens.reshape(F1.shape), levels=12, cmap=DENSITY_CMAP)
    fig.colorbar(cs, ax=ax, label=f"p(x) ({label})", shrink=0.8)
    ax.quiver(P[:, 0], P[:, 1], S[:, 0], S[:, 1], angles="xy", color="black", width=0.003, alpha=0.8)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title or f"{model_name(model)}: learned score field over {label}")
    return fig
