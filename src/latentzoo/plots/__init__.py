"""Figures of fitted latentzoo models: functions ``(fitted estimator, data) -> Figure``.

Imported on demand only (``import latentzoo`` does not import matplotlib). The
functions never call ``plt.show()``; each accepts an ``ax`` (or builds its own figure)
and a ``title``, and raises ``ValueError`` for a model that cannot be drawn that way
(for instance posterior ellipses of PCA, which has no posterior).
"""
from .curves import eigen_spectrum, explained_variance, latent_sweep, training_curves
from .export import figure_to_png_bytes
from .features import drivers_figure, feature_drivers, interpolation_heatmap, reconstruction_scatter
from .fields import score_field
from .images import image_grid, interpolations, reconstructions, samples, tile_images
from .latent import latent_grid, latent_scatter, posterior_ellipses

__all__ = [
    "latent_scatter", "posterior_ellipses", "latent_grid", "reconstructions", "samples",
    "interpolations", "training_curves", "latent_sweep", "score_field", "explained_variance", "eigen_spectrum", "image_grid",
    "tile_images", "figure_to_png_bytes", "drivers_figure", "feature_drivers", "reconstruction_scatter",
    "interpolation_heatmap",
]
