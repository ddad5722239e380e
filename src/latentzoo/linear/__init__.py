"""Linear latent-variable models: PCA and probabilistic PCA, fitted exactly.

Both share the fast exact eigen-fit of :mod:`latentzoo.linear._eigh`. PPCA's Gaussian
algebra (log-likelihood, posterior) is :mod:`latentzoo.linear.ppca_likelihood`; its EM
(also with missing values) is :mod:`latentzoo.linear._em`.
"""
from .pca import PCA
from .ppca import PPCA, DegenerateFitWarning

__all__ = ["PCA", "PPCA", "DegenerateFitWarning"]
