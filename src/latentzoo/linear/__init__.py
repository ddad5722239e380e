"""Linear latent-variable models: PCA and probabilistic PCA, fitted exactly.

Both share the fast exact eigen-fit of :mod:`latentzoo.linear._eigh`; PPCA adds EM
(also with missing values) in :mod:`latentzoo.linear._em`.
"""
from .pca import PCA
from .ppca import PPCA

__all__ = ["PCA", "PPCA"]
