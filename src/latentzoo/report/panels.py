"""The report's figures whose panels are compared: prior samples and interpolations.

Samples: per generative model a row, the same held-out rows first (the reference), then
the decoder means E[x|z] and the full draws x ~ p(x|z) of the same prior draws.
Interpolations: every model's decoded path between the same two held-out points (tables:
the two points themselves first; images: at the two ends of each row).

**Tables** (more than two features, no image shape) are drawn as heatmaps, below.
Narrow tables (up to :data:`~latentzoo.plots.features.MAX_LINE_FEATURES` features) show
every feature in the table's order, and their samples also get a marginal view
(:func:`marginals_figure`): per feature, the distribution of held-out values beside that
of as many full draws, on the same standardised scale.

**Wide tables**: one feature set and one colour scale for all panels.

On a table of thousands of features a heatmap shows a few of them. Panels meant to be
compared (each model's decoder means and full draws, every model's interpolation) must
show the *same* features on the *same* colour scale, or a reader compares different
genes. :func:`shown_features` picks them once, from the training data: the features with
the most variance along the data's leading principal axes (their structured variance;
on standardised data every raw variance is 1 and would not choose). Every panel colours
a value by its distance from the feature's training mean in training standard deviations
(``(x - m_j) / s_j``, clipped at :data:`Z_RANGE`), so features of different scales read
alike and a model whose samples have the wrong scale stands out.

Features are rows (their names horizontal, readable), samples or interpolation steps are
columns, and the panels share the rows; a panel of real rows comes first as the reference.
"""
from __future__ import annotations

import numpy as np

from .figures import NotApplicable, _panel_grid, _plots, _sub, _value_range, _wide_table, _with

__all__ = ["samples_section", "interpolations_section", "reconstruction_heatmaps", "shown_features", "FeatureScale", "heatmap_grid",
           "samples_figure", "marginals_figure", "interpolation_figure", "shown_words", "N_SHOWN", "Z_RANGE"]

#: features shown in the heatmaps of a wide table
N_SHOWN = 20
#: principal axes whose variance ranks the features
N_AXES = 5
#: colour range in training standard deviations from the feature's mean
Z_RANGE = 3.0
#: training rows used to rank the features at most
MAX_ROWS = 5000
#: held-out rows and full draws in the marginal view of a narrow table, at most
N_MARGINAL = 1000
_COLOUR_WORDS = "colour: standard deviations from each feature's training mean (dark grey: a missing value)."
#: what the heatmaps of a wide table show (captions)
SHOWN_WORDS = (f"rows: the same {N_SHOWN} features in every panel, those with the most variance along the "
               f"training data's first {N_AXES} principal axes; {_COLOUR_WORDS}")


def _narrow(comp) -> bool:
    """A table of 3 to MAX_LINE_FEATURES features: every feature fits a heatmap."""
    return comp.image_shape is None and 2 < comp.X_test.shape[1] and not _wide_table(comp)


def shown_words(comp) -> str:
    """What the table heatmaps of ``comp`` show (captions)."""
    return f"rows: all {comp.X_test.shape[1]} features in the table's order; {_COLOUR_WORDS}" if _narrow(comp) \
        else SHOWN_WORDS


# ---------------------------------------------------------------------- section builders
def samples_section(comp):
    """The "Samples from the prior" figure: wide tables as heatmaps, images as image grids."""
    models = _with(comp, lambda m: m.has_prior)
    if not models:
        return [NotApplicable("samples.png", "samples: no model here has a generative prior (PPCA and the "
                              "VAEs do)")]
    seed = comp.setup.get("seed", 0)
    if _wide_table(comp) or _narrow(comp):
        out = [("samples.png", "Every generative model, the same 16 prior draws z ~ N(0, I) twice: the decoder "
                f"means E[x|z] (middle) and full draws x ~ p(x|z) with the observation noise (right), beside "
                f"16 held-out rows (left); {shown_words(comp)}", lambda: samples_figure(comp, models, seed))]
        if _narrow(comp):
            n = min(len(comp.X_test), N_MARGINAL)
            out.append(("samples_marginals.png", f"Each feature's distribution: {n} held-out rows (grey, the "
                        f"reference, the same in every panel) and {n} full draws x ~ p(x|z) of each generative "
                        "model (coloured); boxes: quartiles, whiskers: 5th to 95th percentile, in standard "
                        "deviations from the feature's training mean.", lambda: marginals_figure(comp, models, seed)))
        return out
    kinds = {"decoder means E[x|z]": True, "full draws x ~ p(x|z)": False}
    images = comp.image_shape is not None
    real = _sub(comp.X_test, None, 16, seed)[0] if images else None
    panels = {}
    for i, (n, m) in enumerate(models.items()):
        if images:  # each row starts with the same 16 held-out images, the reference
            panels[(f"held-out data{' ' * i}", "")] = (None, None)
        panels.update({(n, label): (m, mean) for label, mean in kinds.items()})

    def draw(key, pair, ax):
        (name, label), (m, mean) = key, pair
        if m is None:
            _plots().image_grid(real, ax=ax, image_shape=comp.image_shape, title=f"{len(real)} held-out images",
                                **_value_range(comp))
            return
        _plots().samples(m, n=16, image_shape=comp.image_shape, random_state=seed, ax=ax, mean=mean,
                         title=f"{name}: {label}", feature_names=comp.meta.get("columns"), **_value_range(comp))

    where = "16 held-out images (left), the decoder means E[x|z] (middle) and full draws x ~ p(x|z) with the " \
        "observation noise (right)" if images else "the decoder means E[x|z] (left) and full draws x ~ p(x|z) " \
        "with the observation noise (right)"
    return [("samples.png", f"Every generative model, the same 16 prior draws z ~ N(0, I) twice: {where}.",
             lambda: _panel_grid(panels, lambda k, v, ax: draw(k, v, ax), max_cols=3 if images else 4))]


def _interp_pair(comp):
    X, y = comp.X_test, comp.y_test
    if y is not None and len(np.unique(y)) > 1:
        j = int(np.flatnonzero(y != y[0])[0])
        return X[0], X[j]
    return X[0], X[len(X) // 2]


def interpolations_section(comp):
    """The "Interpolations" figure, between two held-out points (of different labels when there are labels)."""
    x_a, x_b = _interp_pair(comp)
    if _wide_table(comp) or _narrow(comp):
        return [("interpolations.png", "Decoded straight-line latent interpolation between two held-out points "
                 f"(left: the two inputs; t = 0 to 1 left to right); {shown_words(comp)}",
                 lambda: interpolation_figure(comp, x_a, x_b, steps=10))]
    ends = " (the two held-out images themselves at the ends of each row, framed: start (data), end (data))" \
        if comp.image_shape is not None else ""
    return [("interpolations.png", f"Decoded straight-line latent interpolation between two held-out points{ends}",
             lambda: _plots().interpolations(comp.models, x_a, x_b, steps=10, image_shape=comp.image_shape,
                                             feature_names=comp.meta.get("columns")))]


def reconstruction_heatmaps(comp, n: int = 16):
    """Wide tables: the same ``n`` held-out rows and every model's reconstruction of them."""
    seed = comp.setup.get("seed", 0)

    def draw():
        scale, names = _scale_and_names(comp)
        real = comp.X_test[np.sort(np.random.default_rng(seed).permutation(len(comp.X_test))[:n])]
        panels = {f"held-out data ({len(real)} rows)": real}
        panels.update({name: np.asarray(m.inverse_transform(m.transform(real)), dtype=np.float64)
                       for name, m in comp.models.items()})
        return heatmap_grid(panels, scale, names, xlabel="held-out row", ncols=min(4, len(panels)),
                            panel_width=2.2, title="Held-out rows and their reconstructions, the same features "
                                                   "and colour scale in every panel")

    return ("reconstruction_heatmaps.png", f"{n} held-out rows (first panel) and each model's reconstruction "
            f"decode(encode(x)) of them; {shown_words(comp)}", draw)


# ---------------------------------------------------------------------- wide tables
def shown_features(X_train, n: int = N_SHOWN, *, n_axes: int = N_AXES, random_state=0) -> np.ndarray:
    """Indices of the ``n`` features with the most variance along the first ``n_axes``
    principal axes of ``X_train``, most first.

    With ``X - m = U S V^T`` (``N`` rows) the variance of feature ``j`` along the first
    ``k`` axes is ``sum_{a<k} S_a^2 V_{aj}^2 / N``: the part of its variance the data's
    main directions of variation explain. Missing values are filled by column means.
    """
    from ..data.missing import fill_column_means
    from ..realism import principal_scores

    X = np.asarray(X_train)  # rows first, then float64: the whole table is never upcast (nor read, if mapped)
    if len(X) > MAX_ROWS:
        X = X[np.sort(np.random.default_rng(random_state).choice(len(X), MAX_ROWS, replace=False))]
    X = np.asarray(X, dtype=np.float64)
    X = fill_column_means(X) if np.isnan(X).any() else X
    C = X - X.mean(axis=0)
    lam, T = principal_scores(C, n_axes)  # T = U_k S_k
    s = np.sqrt(np.maximum(lam[:T.shape[1]], 0.0))
    # S_a V_a = C^T u_a = C^T T_a / s_a (an axis with s_a = 0 explains nothing)
    SV = np.divide(C.T @ T, s, out=np.zeros((C.shape[1], len(s))), where=s > 0).T  # (k, D)
    score = (SV ** 2).sum(axis=0) / len(X)  # (D,) variance along the k axes
    return np.argsort(-score, kind="stable")[: min(int(n), X.shape[1])]


class FeatureScale:
    """``(x - m_j) / s_j`` for the shown features, ``m``/``s`` the training mean and sd."""

    def __init__(self, X_train, cols):
        X = np.asarray(np.asarray(X_train)[:, cols], dtype=np.float64)  # the shown columns only, then float64
        self.cols = np.asarray(cols)
        self.mean = np.nanmean(X, axis=0)
        sd = np.nanstd(X, axis=0)
        self.sd = np.where(sd > 0, sd, 1.0)  # a constant feature: its deviations in raw units

    def __call__(self, A) -> np.ndarray:
        """``(n_rows, n_shown)``: the shown features of the rows of ``A``, standardised."""
        return (np.asarray(A, dtype=np.float64)[:, self.cols] - self.mean) / self.sd


def heatmap_grid(panels: dict, scale: FeatureScale, names, *, xlabel: str, ncols: int, xticks=None,
                 title: str | None = None, panel_width: float = 2.6, axis_of: dict | None = None):
    """One heatmap per panel (``title -> rows x all features``), features as rows shared by all.

    ``None`` for a panel leaves its cell empty. ``xlabel`` and ``xticks`` (``(positions,
    labels)``, default none) describe every panel's columns, except the panels named in
    ``axis_of`` (``title -> (xlabel, xticks)``). One colour bar for all, in training sds.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    axis_of = axis_of or {}
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.45")  # missing values: dark grey, not "0 sd" white

    rows = -(-len(panels) // ncols)
    height = 0.12 * len(scale.cols) + 0.9
    fig, axes = plt.subplots(rows, ncols, figsize=(panel_width * ncols + 2.6, height * rows + 0.5),
                             layout="constrained", squeeze=False)
    im = None
    for ax, (label, A) in zip(axes.ravel(), panels.items()):
        if A is None:
            ax.set_visible(False)
            continue
        im = ax.imshow(scale(A).T, aspect="auto", cmap=cmap, vmin=-Z_RANGE, vmax=Z_RANGE,
                       interpolation="nearest")  # (features, columns)
        ax.set_title(label, fontsize=9)
        xl, xt = axis_of.get(label, (xlabel, xticks))
        ax.set_xlabel(xl, fontsize=8)
        if xt is None:
            ax.set_xticks([])
        else:
            ax.set_xticks(*xt, fontsize=7)
        ax.set_yticks([])
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for row in axes:  # feature names on the first panel of each row (every panel has the same rows)
        first = next((ax for ax in row if ax.get_visible()), None)
        if first is not None:
            first.set_yticks(np.arange(len(scale.cols)), [str(names[j]) for j in scale.cols], fontsize=7)
    fig.colorbar(im, ax=axes.ravel().tolist(), extend="both", shrink=min(1.0, 6.0 / (height * rows + 0.5)),
                 label="(value - training mean) / training sd")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _scale_and_names(comp):
    from ..plots.features import feature_labels

    X = comp.X_train if comp.X_train is not None else comp.X_test
    cols = np.arange(X.shape[1]) if _narrow(comp) else shown_features(X, random_state=comp.setup.get("seed", 0))
    return FeatureScale(X, cols), feature_labels(comp.meta.get("columns"), X.shape[1])


def _draw(model, n: int, seed: int, mean: bool) -> np.ndarray:
    import inspect

    kw = {"mean": mean} if "mean" in inspect.signature(model.sample).parameters else {}
    return np.asarray(model.sample(n, random_state=seed, **kw), dtype=np.float64)


def samples_figure(comp, models: dict, seed: int, n: int = 16):
    """Per generative model a row: ``n`` held-out rows (the same in every row, the
    reference), the decoder means E[x|z] and the full draws x ~ p(x|z) of the same ``n``
    prior draws z."""
    scale, names = _scale_and_names(comp)
    real = comp.X_test[np.sort(np.random.default_rng(seed).permutation(len(comp.X_test))[:n])]
    panels, axis_of = {}, {}
    for i, (name, m) in enumerate(models.items()):
        key = f"held-out data ({len(real)} rows)" + " " * i  # one panel per row, the same rows
        panels[key], axis_of[key] = real, ("held-out row", None)
        panels[f"{name}: decoder means E[x|z]"] = _draw(m, n, seed, True)
        panels[f"{name}: full draws x ~ p(x|z)"] = _draw(m, n, seed, False)
    return heatmap_grid(panels, scale, names, xlabel="prior draw", ncols=3, axis_of=axis_of,
                        title=f"{n} prior draws per model, the same features and colour scale in every panel")


def marginals_figure(comp, models: dict, seed: int, n: int = N_MARGINAL):
    """Per generative model a panel: for every feature, a box of the held-out values (grey,
    the reference, above) and one of as many full draws x ~ p(x|z) (the model's colour),
    standardised as the heatmaps (:class:`FeatureScale`): wrong scales, shifted means and
    collapsed spreads show feature by feature."""
    import inspect

    import matplotlib.axes

    from ..plots._style import PALETTE, panel_grid

    scale, names = _scale_and_names(comp)
    real = scale(comp.X_test[np.sort(np.random.default_rng(seed).permutation(len(comp.X_test))[:n])])
    d, ncols = len(scale.cols), 4
    fig, axes = panel_grid(len(models), size=3.6, height=0.32 * d + 1.2, max_cols=ncols)
    # horizontal boxes: ``orientation`` from matplotlib 3.10 on (``vert`` deprecated there), ``vert`` before
    horizontal = {"orientation": "horizontal"} if "orientation" in inspect.signature(
        matplotlib.axes.Axes.boxplot).parameters else {"vert": False}
    style = dict(**horizontal, widths=0.32, whis=(5, 95), showfliers=False, patch_artist=True,
                 medianprops={"color": "black"})
    y, handles = np.arange(d), []
    for k, (ax, (name, m)) in enumerate(zip(axes, models.items())):
        S = scale(_draw(m, len(real), seed, False))
        ref = ax.boxplot([c[~np.isnan(c)] for c in real.T], positions=y - 0.19, **style)
        gen = ax.boxplot(list(S.T), positions=y + 0.19, **style)
        for box in ref["boxes"]:
            box.set(facecolor="0.8", edgecolor="0.4", label="held-out data")
        for box in gen["boxes"]:
            box.set(facecolor=PALETTE[k % len(PALETTE)], edgecolor="0.2", alpha=0.8, label=f"{name} draws")
        first = k % ncols == 0  # feature names on each row's first panel
        ax.set_yticks(y, [str(names[j]) for j in scale.cols] if first else [], fontsize=7)
        ax.set_ylim(d - 0.5, -0.5)  # the first feature at the top, as in the heatmaps
        ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("(value - training mean) / training sd", fontsize=8)
        ax.set_title(name, fontsize=9)
        handles = handles or [ref["boxes"][0]]
        handles.append(gen["boxes"][0])
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8, frameon=False)
    fig.suptitle(f"Feature marginals: {len(real)} held-out rows and {len(real)} full draws per model", fontsize=10)
    return fig


def interpolation_figure(comp, x_a, x_b, steps: int = 10):
    """The two inputs, then per model the decoded path ``(1 - t) z_a + t z_b`` (t = 0..1 left to right)."""
    from ..plots.images import _path

    scale, names = _scale_and_names(comp)
    ends = np.vstack([np.ravel(x_a), np.ravel(x_b)])
    panels = {"the two inputs": ends}
    panels.update({name: _path(m, x_a, x_b, steps) for name, m in comp.models.items()})
    ncols = min(4, len(panels))
    return heatmap_grid(panels, scale, names, xlabel="t = 0 \u2192 1", ncols=ncols, panel_width=2.2,
                        xticks=([0, steps - 1], ["0", "1"]),
                        axis_of={"the two inputs": ("input", ([0, 1], ["a", "b"]))},
                        title=f"Decoded interpolation ({steps} steps), the same features and colour scale "
                              "in every panel")
