"""latentzoo: the ladder of latent-variable models behind one scikit-learn API.

PCA -> probabilistic PCA -> autoencoder -> denoising AE -> contractive AE -> VAE -> beta-VAE.
"""
from .registry import MODELS, make_model, register_model
from .linear import PCA, PPCA
from .neural.autoencoder import Autoencoder
from .neural.vae import VAE
from .data import Dataset, load_dataset
from .persistence import load
from .impute import Imputer

__version__ = "0.1.0"

__all__ = ["PCA", "PPCA", "Autoencoder", "VAE", "Imputer", "MODELS", "make_model", "register_model", "load", "Dataset", "load_dataset"]
