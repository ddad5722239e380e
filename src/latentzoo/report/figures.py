"""The report's figures, as a registry: section -> builder(comparison) -> list of figures.

Each builder picks the models its figure applies to (e.g. posterior ellipses for the
models with a posterior) and calls :mod:`latentzoo.plots`. A figure that cannot apply
(posterior ellipses need q >= 2, decoded grids q = 2) is a :class:`NotApplicable` with
the one-line reason the report prints, and its section is left out: no section without
its figure, no error. A figure that fails to draw becomes a visible note in the report
(and a logged warning) instead of losing the whole comparison.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..base import latent_dim
from ..experiment import Comparison

__all__ = ["Section", "SECTIONS", "RenderedFigure", "NotApplicable", "build_figures", "regularity_figure"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedFigure:
    """One PNG of the report (``png`` None and ``error`` set when drawing failed; ``png``
    None and ``omitted`` set when the figure does not apply to these models)."""

    section: str
    filename: str
    caption: str
    png: bytes | None
    error: str | None = None
    omitted: str | None = None


@dataclass(frozen=True)
class NotApplicable:
    """A figure a builder leaves out, with the one-line reason the report prints."""

    filename: str
    reason: str


@dataclass(frozen=True)
class Section:
    """A report section; ``intro`` is text or a function of the comparison (what it shows
    depends on the data: labels, latent dimension)."""

    key: str
    heading: str
    intro: str | Callable[[Comparison], str]
    builder: Callable[[Comparison], list]


def _plots():
    import latentzoo.plots as plots

    return plots


def _panels():
    from . import panels

    return panels


def _sub(X, y, n: int, seed: int):
    idx = np.random.default_rng(seed).permutation(len(X))[:n]
    return X[idx], (None if y is None else y[idx])


def _with(comp: Comparison, applies: Callable[[object], bool]) -> dict:
    """The models a figure applies to (``applies(model)``), by name."""
    return {n: m for n, m in comp.models.items() if applies(m)}


# ---------------------------------------------------------------------- builders
def regularity_figure(comp: Comparison):
    """Two bar charts: sample realism (0.5 ideal, the real-against-real reference) and smoothness."""
    import matplotlib.pyplot as plt

    names = [r.name for r in comp.results]
    real = [r.metrics.get("sample_realism") for r in comp.results]
    smooth = [r.metrics.get("interpolation_smoothness") for r in comp.results]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    x = np.arange(len(names))
    a1.bar(x, [np.nan if v is None else v for v in real], color="#1f77b4")
    a1.axhline(0.5, color="k", ls="--", lw=1, label="0.5: indistinguishable (ideal)")
    if comp.realism_reference is not None:
        a1.axhline(comp.realism_reference, color="#2ca02c", ls=":", lw=1.5,
                   label=f"real vs real ({comp.realism_reference:.2f})")
    a1.set_ylim(0, 1.3)
    a1.legend(loc="upper center", fontsize=7, ncols=2, frameon=False)
    a1.set_title("sample realism: 1-NN accuracy telling generated from held-out data\n(0.5 = ideal, 1 = told "
                 "apart)", fontsize=9)
    a2.bar(x, [np.nan if v is None else v for v in smooth], color="#ff7f0e")
    a2.axhline(1.0, color="k", ls="--", lw=1, label="straight path")
    a2.set_ylim(0, max(1.3, 1.15 * max((v for v in smooth if v is not None), default=1.0)))
    a2.legend(loc="upper center", fontsize=8, frameon=False)
    a2.set_title("interpolation smoothness: path length / endpoint distance\n(1 = straight)", fontsize=9)
    for ax in (a1, a2):
        ax.set_xticks(x, names, rotation=30, ha="right")
    return fig


def _regularity(comp):
    return [("regularity.png", "Latent regularity of every model (numbers in the metrics table).",
             lambda: regularity_figure(comp))]


def _panel_grid(models: dict, draw_one, *, size=3.2, max_cols=4):
    """One figure, one axes per model (``max_cols`` per row); ``draw_one(name, model, ax)``."""
    from ..plots._style import panel_grid

    fig, axes = panel_grid(len(models), size=size, max_cols=max_cols)
    for ax, (name, m) in zip(axes, models.items()):
        draw_one(name, m, ax)
    return fig


def _latent_words(comp) -> str:
    q = comp.setup.get("latent_dim")
    where = ("the 1-D codes against the label" if comp.y_test is not None else "the 1-D codes") if q == 1 else \
        "the two latent coordinates" if q in (None, 2) else f"PC1/PC2 of the {q}-D codes (their first two " \
        "principal coordinates)"
    colour = "coloured by label" if comp.y_test is not None else "no labels, one colour"
    return f"Held-out codes of every model: {where}, {colour}."


def _latent(comp):
    X, y = _sub(comp.X_test, comp.y_test, 1000, comp.setup.get("seed", 0))
    return [("latent_spaces.png", _latent_words(comp),
             lambda: _panel_grid(comp.models, lambda n, m, ax: _plots().latent_scatter(m, X, y, ax=ax, title=n)))]


def _figure_q(comp) -> int | None:
    """The latent dimension of the models the figures show."""
    if comp.figure_q is not None:
        return comp.figure_q
    qs = {latent_dim(m) for m in comp.models.values()}
    return qs.pop() if len(qs) == 1 else None


def _posterior(comp):
    models = _with(comp, lambda m: m.has_posterior)
    if not models:
        return [NotApplicable("posteriors.png", "posterior ellipses: no model here has a posterior q(z|x) "
                              "(PPCA and the VAEs do)")]
    models = {n: m for n, m in models.items() if latent_dim(m) >= 2}
    if not models:
        return [NotApplicable("posteriors.png", f"posterior ellipses need at least 2 latent dimensions; "
                              f"the models shown have q = {_figure_q(comp)}")]
    X, y = _sub(comp.X_test, comp.y_test, 300, comp.setup.get("seed", 0))
    return [("posteriors.png", "Posterior q(z|x) of 100 held-out points (2-sigma ellipses) and the prior.",
             lambda: _panel_grid(models, lambda n, m, ax: _plots().posterior_ellipses(m, X, y, ax=ax, title=n),
                                 size=3.6))]


def _value_range(comp) -> dict:
    """Grey levels of decoded images on the data's own scale (not each panel's min/max)."""
    vr = comp.meta.get("value_range")
    return {"vmin": vr[0], "vmax": vr[1]} if vr and all(np.isfinite(vr)) else {}


def _two_d_latent(comp) -> dict:
    return {n: m for n, m in comp.models.items() if latent_dim(m) == 2}


def _grid(comp):
    models = _two_d_latent(comp)
    if not models:
        return [NotApplicable("latent_grids.png", f"decoded latent grids need a 2-D latent space (q = 2); "
                              f"the models shown have q = {_figure_q(comp)}")]
    if comp.image_shape is None:
        return [NotApplicable("latent_grids.png", "decoded latent grids are drawn for image data; these data "
                              "have no image shape")]
    return [("latent_grids.png", "Decoded regular grids of each 2-D latent space (prior quantiles for "
             "PPCA/VAE, the span of the training codes otherwise).",
             lambda: _panel_grid(models, lambda n, m, ax: _plots().latent_grid(
                 m, image_shape=comp.image_shape, X=comp.X_train if comp.X_train is not None else comp.X_test,
                 ax=ax, title=n, **_value_range(comp)), size=5.5, max_cols=3))]


def _wide_table(comp) -> bool:
    from ..plots.features import MAX_LINE_FEATURES

    return comp.image_shape is None and comp.X_test.shape[1] > MAX_LINE_FEATURES


def _reconstructions(comp):
    if _wide_table(comp):  # tables: every held-out entry of 300 rows, observed vs reconstructed
        X, _ = _sub(comp.X_test, comp.y_test, 300, comp.setup.get("seed", 0))
        return [("reconstructions.png", f"Observed vs reconstructed values of {len(X)} held-out samples (every "
                 "feature; the dashed line is a perfect reconstruction; R\u00b2 over the observed entries)",
                 lambda: _plots().reconstructions(comp.models, X, n=len(X))),
                _panels().reconstruction_heatmaps(comp)]
    X, _ = _sub(comp.X_test, comp.y_test, 8, comp.setup.get("seed", 0))
    return [("reconstructions.png", "Held-out inputs (top row) and each model's reconstruction",
             lambda: _plots().reconstructions(comp.models, X, n=len(X), image_shape=comp.image_shape))]


def _drivers(comp):
    if comp.image_shape is not None or comp.X_test.shape[1] <= 2:
        return []
    X = comp.X_train if comp.X_train is not None else comp.X_test
    names = comp.meta.get("columns")
    return [(f"drivers_{n}.png", f"{n}: the 10 features with the largest effect on each latent unit "
             f"({'loadings' if hasattr(m, 'components_') else 'decoder Jacobian averaged over the data'})",
             (lambda m=m, n=n: _plots().drivers_figure(m, X, feature_names=names, top=10, name=n)))
            for n, m in comp.models.items()]


def _samples(comp):
    return _panels().samples_section(comp)


def _interpolations(comp):
    return _panels().interpolations_section(comp)


def _objective(model) -> str:
    """What a neural model's training loss is, in words (one panel per model: objectives differ)."""
    if model.has_density:
        bound = "IWAE bound" if getattr(model, "objective", "elbo") == "iwae" else "ELBO"
        beta = getattr(model, "beta", 1.0)
        return f"-{bound}" + (f" (KL weight beta = {beta:g})" if beta != 1.0 else "") + ", nats per sample"
    parts = [f"-log p(x | decode(encode(x))) ({getattr(model, 'likelihood', '?')})"]
    if getattr(model, "noise", None):
        parts[0] += f" of noisy inputs ({model.noise})"
    if getattr(model, "contractive", 0):
        parts.append(f"{model.contractive:g} ||J_f||^2")
    return " + ".join(parts) + ", per sample"


def _curves(comp):
    from ..neural.base import NeuralEstimator

    models = _with(comp, lambda m: isinstance(m, NeuralEstimator))  # trained by epochs: a history_
    if not models:
        return [NotApplicable("training_curves.png", "training curves: no model here is trained by epochs "
                              "(closed-form fits only)")]
    return [("training_curves.png", "Training (solid) and validation (dashed) loss per epoch, one panel per model: "
             "each minimises its own objective (panel titles), so losses compare within a panel only.",
             lambda: _panel_grid(models, lambda n, m, ax: _curve_panel(n, m, ax), size=4.0, max_cols=3))]


def _curve_panel(name, model, ax):
    import textwrap

    _plots().training_curves({name: model}, ax=ax, title="\n".join(textwrap.wrap(f"{name}: {_objective(model)}", 38)))
    ax.title.set_fontsize(9)
    ax.legend(fontsize="x-small", frameon=False, loc="best")


def _pca(comp):
    from ..linear import PCA

    X = comp.X_train if comp.X_train is not None else comp.X_test
    return [(f"explained_variance_{n}.png", f"{n}: the whole eigen-spectrum of the training data, the chosen "
             f"q = {m.n_components_} marked", (lambda m=m: _plots().eigen_spectrum(X, m.n_components_)))
            for n, m in _with(comp, lambda m: isinstance(m, PCA)).items()]


def _score(comp):
    from ..neural.autoencoder import Autoencoder

    models = _with(comp, lambda m: isinstance(m, Autoencoder) and str(m.noise or "").startswith("gaussian"))
    if not models:
        return []
    if comp.X_test.shape[1] != 2:
        return [NotApplicable("score_field_*.png", f"DAE score fields are drawn for 2-D data; these data have "
                              f"{comp.X_test.shape[1]} features")]
    from ..data import DENSITIES

    density_factory = DENSITIES.get(comp.meta.get("name"))
    density = density_factory() if density_factory is not None else None
    return [(f"score_field_{n}.png", f"{n}: learned score (DAE) versus the true density",
             (lambda m=m: _plots().score_field(m, comp.X_test, density))) for n, m in models.items()]


def _sweep(comp):
    from ..experiment.stats import DIRECTIONS, METRIC_LABELS

    if len({r["latent_dim"] for r in comp.summary}) < 2:
        return []
    out = []
    for metric in list(DIRECTIONS) + ["active_units"]:
        if not any(r.get(metric) is not None for r in comp.summary):
            continue
        label = METRIC_LABELS.get(metric, metric.replace("_", " "))
        better = {"min": "lower is better", "max": "higher is better"}.get(DIRECTIONS.get(metric), "")
        out.append((f"sweep_{metric}.png", f"{label}: mean ± 1 sd over the runs{'; ' + better if better else ''}.",
                    (lambda metric=metric, label=label: _plots().latent_sweep(
                        comp.summary, metric, label=label, evidence_q=comp.ppca_evidence_q))))
    return out


def sweep_intro(comp) -> str:
    """The sweep section's text, with PPCA's evidence choice of q."""
    text = ("Each metric against the latent dimension q, one line per model (the tables per q are in the "
            "metrics section; the figures further down show the runs at q = 2 when the sweep has it).")
    q = comp.ppca_evidence_q
    if q is not None:
        qs = sorted({r["latent_dim"] for r in comp.summary})
        where = "dotted line" if qs[0] / 2 <= q <= qs[-1] * 2 else "outside the swept range, not drawn"
        text += f" PPCA's own choice by Minka's (2000) evidence: q = {q} ({where})."
    return text


#: report sections in order; the metrics table and the setup are written by html.py
SECTIONS: list[Section] = [
    Section("sweep", "Latent-dimension sweep", sweep_intro, _sweep),
    Section("regularity", "Latent regularity",
            "Sample realism: generate as many points as there are held-out examples (PPCA/VAE: full draws from "
            "the model; models without a prior: decoded draws from a Gaussian fitted to their training codes) "
            "and measure how well a leave-one-out 1-nearest-neighbour classifier tells them from the held-out "
            "data: 0.5 = indistinguishable (the ideal; the dotted line is real against real), 1 = every point "
            "told apart. Blurry means do not score well. The classifier works on the first 20 principal axes "
            "of the pooled points (real and generated together, on the data's own scale) plus each point's "
            "distance from that subspace: in the raw feature space of high-dimensional data it is fooled "
            "(noise-like draws, with noise in every pixel, are each nearest to a real point, and the accuracy "
            "reads exactly 0.5). Interpolation smoothness: decode straight latent "
            "paths between held-out pairs and divide the decoded path length by the endpoint distance "
            "(1 = straight, linear decoders score exactly 1).", _regularity),
    Section("latent", "Latent spaces", _latent_words, _latent),
    Section("posterior", "Posterior uncertainty",
            "Probabilistic encoders give a distribution q(z|x) per point, not a single code.", _posterior),
    Section("grid", "Decoded latent grids",
            "A regular grid over the 2-D latent space, decoded: holes and jumps show irregular regions.", _grid),
    Section("drivers", "Features driving each latent unit",
            "Which features each latent unit moves, by name: the change of each decoded feature per unit "
            "change of the latent coordinate, dE[x|z]/dz. For PCA and PPCA these are the loadings (the "
            "decoder is linear); for the neural models the decoder's Jacobian averaged over the codes of the "
            "data. Blue: the feature rises with the unit; red: it falls.", _drivers),
    Section("reconstructions", "Reconstructions", "", _reconstructions),
    Section("samples", "Samples from the prior",
            "Models with a generative prior p(z) = N(0, I) (PPCA, VAE): decoder means and full draws of the same "
            "prior draws, labelled.", _samples),
    Section("interpolations", "Interpolations", "", _interpolations),
    Section("curves", "Training curves", "", _curves),
    Section("pca", "PCA eigen-spectrum", "", _pca),
    Section("score", "DAE score field",
            "For Gaussian-noise denoising autoencoders (r(x) - x) / sigma^2 estimates the score "
            "grad log p(x) (Alain & Bengio 2014).", _score),
]


def build_figures(comp: Comparison, *, dpi: int = 100) -> list[RenderedFigure]:
    """Draw every figure of every section that applies; failures become notes, figures
    that do not apply become ``omitted`` entries (their reason, no PNG)."""
    import matplotlib.pyplot as plt

    from ..plots import figure_to_png_bytes

    out = []
    for sec in SECTIONS:
        for item in sec.builder(comp):
            if isinstance(item, NotApplicable):
                out.append(RenderedFigure(sec.key, item.filename, "", None, omitted=item.reason))
                continue
            filename, caption, draw = item
            try:
                fig = draw()
                png = figure_to_png_bytes(fig, dpi=dpi)
                plt.close(fig)
                out.append(RenderedFigure(sec.key, filename, caption, png))
            except Exception as e:  # one figure must not lose the whole report
                plt.close("all")
                logger.warning("figure %s could not be drawn: %s: %s", filename, type(e).__name__, e)
                out.append(RenderedFigure(sec.key, filename, caption, None, f"{type(e).__name__}: {e}"))
    return out
