"""Neural models on PyTorch: one training engine for AE, DAE, CAE, VAE and beta-VAE."""

from .autoencoder import Autoencoder
from .vae import VAE
