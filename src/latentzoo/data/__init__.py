"""Data loading: ``load_dataset(source) -> Dataset(X float32, y, meta)``.

Sources: embedded sets (``"digits"``, and the seeded 2-D ``"gaussian-mixture"``,
``"moons"``, ``"swiss-roll"`` whose densities are known, see :mod:`.synthetic`), files
(CSV/TSV/TXT, NPY, NPZ, MNIST IDX, binarised-MNIST AMAT; see :mod:`.formats`), folders
of MNIST files, numpy arrays and pandas DataFrames.
"""
from .dataset import Dataset, load_dataset
from .formats import READERS
from .synthetic import (
    DENSITIES,
    EMBEDDED,
    CurveMixture2D,
    GaussianMixture2D,
    gaussian_mixture_density,
    moons_density,
    swiss_roll_density,
)

__all__ = [
    "Dataset", "load_dataset", "READERS", "EMBEDDED", "DENSITIES", "GaussianMixture2D",
    "CurveMixture2D", "gaussian_mixture_density", "moons_density", "swiss_roll_density",
]
