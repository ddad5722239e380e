"""Pictures of the latent space: codes, posterior distributions, and the decoded manifold."""
from __future__ import annotations

import numpy as np

from ..base import latent_dim
from ._style import FIGSIZE, PALETTE, figure_and_axes, label_colors, model_name, scatter_labelled
from .images import image_grid, resolve_image_shape

__all__ = ["latent_scatter", "posterior_ellipses", "latent_grid", "posterior_moments", "ellipse_geometry"]


def _project_2d(Z: np.ndarray, y=None):
    """Two coordinates to draw the codes in: the codes themselves when ``q = 2``; the
    first two principal coordinates of the codes when ``q > 2``; ``(z1, label or 0)``
    when ``q = 1``. Returns ``(P, xlabel, ylabel)``."""
    q = Z.shape[1]
    if q == 2:
        return Z, "$z_1$", "$z_2$"
    if q == 1:
        other = np.zeros(len(Z)) if y is None or not np.issubdtype(np.asarray(y).dtype, np.number) \
            else np.asarray(y, dtype=float)
        return np.column_stack([Z[:, 0], other]), "$z_1$", "label" if y is not None else ""
    Zc = Z - Z.mean(axis=0)
    _, s, Vt = np.linalg.svd(Zc, full_matrices=False)
    V = Vt[:2]
    V = V * np.sign(V[np.arange(2), np.abs(V).argmax(axis=1)])[:, None]  # largest loading positive
    share = s[:2] ** 2 / max(float((s ** 2).sum()), 1e-300)
    labels = [f"PC {i + 1} of the {q}-D codes ({100 * share[i]:.0f}% var.)" for i in range(2)]
    return Zc @ V.T, *labels


def latent_scatter(model, X, y=None, ax=None, *, title=None, s=12, alpha=0.8):
    """The codes ``model.transform(X)`` in the plane, coloured by label.

    A latent space of more than two dimensions is shown through the first two
    principal coordinates of the codes (the axis labels say so).

    Parameters
    ----------
    model : fitted latentzoo model (any: every model has ``transform``)
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,), optional
        Discrete labels get a legend, continuous ones a colour bar.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    Z = np.asarray(model.transform(X), dtype=np.float64)
    P, xlabel, ylabel = _project_2d(Z, y)
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["square"])
    scatter_labelled(ax, P, y, s=s, alpha=alpha)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{model_name(model)}: latent codes of {len(Z)} samples")
    return fig


# ---------------------------------------------------------------------- posteriors
def posterior_moments(model, X):
    """Mean (n, q) and covariance (n, q, q) of the model's posterior ``q(z | x)``.

    Reads ``covariance_matrix`` of a full-covariance posterior (PPCA's
    ``MultivariateNormal``), else builds the diagonal covariance from ``variance``
    (the VAE's factorised ``Normal`` / ``Independent``).

    Raises
    ------
    ValueError
        When the model has no ``posterior`` (PCA, autoencoders: a point, not a distribution).
    """
    if not getattr(model, "has_posterior", False):
        raise ValueError(f"{model_name(model)} has no posterior q(z|x) (it encodes each input to a point); "
                         "posterior_ellipses needs a probabilistic encoder such as PPCA or VAE")
    dist = model.posterior(X)
    mean = dist.mean.detach().cpu().double().numpy()
    cov = getattr(dist, "covariance_matrix", None)
    if cov is not None:
        cov = cov.detach().cpu().double().numpy()
    else:
        var = dist.variance.detach().cpu().double().numpy()
        cov = var[..., :, None] * np.eye(var.shape[-1])
    mean = mean.reshape(len(mean), -1)
    cov = np.broadcast_to(cov, (len(mean), mean.shape[1], mean.shape[1]))
    return mean, cov


def ellipse_geometry(cov2: np.ndarray, n_std: float = 2.0):
    """Width, height (full axis lengths) and angle (degrees) of the ``n_std`` ellipses of
    2x2 covariances (n, 2, 2): axes ``2 n_std sqrt(lambda)`` along the eigenvectors,
    the width along the leading one."""
    vals, vecs = np.linalg.eigh(cov2)              # ascending eigenvalues
    vals = np.clip(vals, 0.0, None)
    width = 2 * n_std * np.sqrt(vals[:, 1])
    height = 2 * n_std * np.sqrt(vals[:, 0])
    angle = np.degrees(np.arctan2(vecs[:, 1, 1], vecs[:, 0, 1]))
    return width, height, angle


def posterior_ellipses(model, X, y=None, n_points=100, n_std=2, *, ax=None, random_state=0,
                       show_prior=True, title=None):
    """From points to distributions: each input drawn as its posterior ``q(z | x)``.

    Each of ``n_points`` rows of ``X`` (a seeded random subset) is an ellipse of its
    posterior covariance at ``n_std`` standard deviations, centred on the posterior
    mean. PPCA's posterior ``N(M^-1 W^T (x - mu), sigma2 M^-1)`` (Tipping & Bishop 1999,
    eq. 6) has one shared covariance; the VAE's diagonal ``q(z|x)`` (Kingma & Welling
    2014) gives axis-aligned ellipses, one per point. With more than two latent
    dimensions the first two coordinates are drawn (their marginal covariance).

    Parameters
    ----------
    model : fitted model with ``posterior(X)`` (PPCA, VAE)
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,), optional labels (colours)
    n_points : int, default=100
    n_std : float, default=2
    ax : matplotlib Axes, optional
    random_state : int, default=0
        Seeds the choice of the ``n_points`` rows.
    show_prior : bool, default=True
        Also draw the prior ``N(0, I)`` at ``n_std`` (dashed circle).

    Returns
    -------
    matplotlib.figure.Figure
        The posterior ellipses are the axes' patches with ``gid="posterior"``.
    """
    from matplotlib.patches import Circle, Ellipse

    X = np.asarray(X)
    if n_std <= 0:
        raise ValueError(f"n_std must be positive, got {n_std}")
    idx = np.sort(np.random.default_rng(random_state).choice(len(X), size=min(int(n_points), len(X)),
                                                              replace=False))
    yy = None if y is None else np.asarray(y)[idx]
    mean, cov = posterior_moments(model, X[idx])
    if mean.shape[1] < 2:
        raise ValueError(f"posterior_ellipses needs at least 2 latent dimensions, {model_name(model)} has "
                         f"{mean.shape[1]}")
    width, height, angle = ellipse_geometry(cov[:, :2, :2], n_std)
    colors = label_colors(yy, len(idx))
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["square"])
    face_alpha = min(0.25, 6.0 / len(idx))   # many overlapping ellipses stay readable
    for k in range(len(idx)):
        r, g, b, _ = colors[k]
        ax.add_patch(Ellipse(mean[k, :2], width[k], height[k], angle=angle[k], gid="posterior",
                             facecolor=(r, g, b, face_alpha), edgecolor=(r, g, b, 0.6), linewidth=0.7))
    extra = []
    if show_prior:
        prior = Circle((0, 0), n_std, fill=False, linestyle="--", edgecolor="black", linewidth=1.2,
                       gid="prior", label=f"prior N(0, I)\n({n_std} std)")
        ax.add_patch(prior)
        extra.append(prior)
    scatter_labelled(ax, mean[:, :2], yy, s=8, alpha=0.9, zorder=3, extra_handles=extra)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    q = mean.shape[1]
    ax.set_xlabel("$z_1$" if q == 2 else f"$z_1$ (of {q} latent dims)")
    ax.set_ylabel("$z_2$" if q == 2 else f"$z_2$ (of {q} latent dims)")
    ax.set_title(title or f"{model_name(model)}: posteriors q(z|x) of {len(idx)} inputs ({n_std} std)")
    return fig


# ---------------------------------------------------------------------- decoded manifold
def _has_standard_prior(model) -> bool:
    # the generative models of the ladder (PPCA, VAE) share the prior p(z) = N(0, I)
    return getattr(model, "has_prior", False)


def _ticks(values, n_max=7):
    """At most ``n_max`` evenly spaced tick positions (indices) and their labels."""
    step = max(1, int(np.ceil(len(values) / n_max)))
    keep = np.arange(0, len(values), step)
    return keep, [f"{values[i]:.2g}" for i in keep]


def latent_grid(model, n=15, extent=None, image_shape=None, *, X=None, quantiles=(0.05, 0.95), ax=None,
                vmin=None, vmax=None, title=None):
    """Decode a regular ``n x n`` grid of a 2-D latent space: the learned manifold.

    For models with the prior ``N(0, I)`` (PPCA, VAE) the grid is the prior's
    quantiles, ``norm.ppf`` of a uniform grid over ``quantiles`` (Kingma & Welling
    2014, Fig. 4), so each tile covers equal prior mass. For the others (PCA,
    autoencoders) it spans the codes of ``X`` (1st to 99th percentile), unless
    ``extent`` is given. Columns run along ``z1`` (left to right), rows along ``z2``
    (top = largest).

    Parameters
    ----------
    model : fitted model with a 2-D latent space
    n : int, default=15
    extent : (z1_min, z1_max, z2_min, z2_max), optional
        An explicit latent rectangle (overrides the quantiles and the data).
    image_shape : (h, w), optional
        Decoded images are tiled into one picture. 2-D data (no image shape) are drawn
        as the decoded grid lines in data space.
    X : array, optional
        Data whose codes set the extent (models without a prior).
    quantiles : (low, high), default=(0.05, 0.95)
    vmin, vmax : float, optional
        Grey-level range of the images (e.g. the data's value range), default the
        decoded images' range.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.stats import norm

    q = latent_dim(model)
    if q != 2:
        raise ValueError(f"latent_grid needs a 2-D latent space, {model_name(model)} has n_components={q}")
    if int(n) < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    n = int(n)
    if extent is not None:
        if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
            raise ValueError(f"extent must be (z1_min, z1_max, z2_min, z2_max) with min < max, got {extent}")
        g1, g2 = np.linspace(extent[0], extent[1], n), np.linspace(extent[2], extent[3], n)
        how = "regular grid"
    elif _has_standard_prior(model):
        lo, hi = quantiles
        if not 0 < lo < hi < 1:
            raise ValueError(f"quantiles must satisfy 0 < low < high < 1, got {quantiles}")
        g1 = g2 = norm.ppf(np.linspace(lo, hi, n))
        how = "prior quantiles"
    elif X is not None:
        Z = np.asarray(model.transform(X), dtype=np.float64)
        lo, hi = np.percentile(Z, [1, 99], axis=0)
        g1, g2 = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        how = "range of the codes"
    else:
        raise ValueError(f"{model_name(model)} has no prior to take quantiles of: pass X (its codes set the "
                         "range) or extent=(z1_min, z1_max, z2_min, z2_max)")
    G1, G2 = np.meshgrid(g1, g2[::-1])            # row i: z2 = g2[n-1-i]; column j: z1 = g1[j]
    Z = np.column_stack([G1.ravel(), G2.ravel()])
    D = np.asarray(model.inverse_transform(Z), dtype=np.float64)
    shape = resolve_image_shape(image_shape, D.shape[1], model)
    title = title or f"{model_name(model)}: decoded {n}x{n} latent grid ({how})"
    if shape is not None:
        fig, ax = figure_and_axes(ax, figsize=FIGSIZE["grid"])
        image_grid(D, ncols=n, ax=ax, image_shape=shape, vmin=vmin, vmax=vmax, title=title)
        h, w = shape
        keep, lab = _ticks(g1)
        ax.set_xticks(1 + keep * (w + 1) + (w - 1) / 2, lab, fontsize="small")
        g2_top = g2[::-1]
        keep, lab = _ticks(g2_top)
        ax.set_yticks(1 + keep * (h + 1) + (h - 1) / 2, lab, fontsize="small")
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        return fig
    if D.shape[1] != 2:
        raise ValueError(f"latent_grid draws images (pass image_shape=(h, w) for {D.shape[1]} features) or "
                         "2-D data; these data are neither")
    fig, ax = figure_and_axes(ax, figsize=FIGSIZE["square"])
    if X is not None:
        Xa = np.asarray(X, dtype=np.float64)
        ax.scatter(Xa[:, 0], Xa[:, 1], s=5, color="0.75", linewidths=0, label="data")
    P = D.reshape(n, n, 2)
    for i in range(n):
        ax.plot(P[i, :, 0], P[i, :, 1], color=PALETTE[0], linewidth=0.9,
                label="$z_2$ fixed" if i == 0 else None)
        ax.plot(P[:, i, 0], P[:, i, 1], color=PALETTE[1], linewidth=0.9,
                label="$z_1$ fixed" if i == 0 else None)
    ax.legend(frameon=False, fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    return fig
