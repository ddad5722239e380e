"""A VAE with PPCA's exact linear-Gaussian model planted in it, shared by the VAE-loss and
imputation tests: the decoder is x = W z + mu + sigma eps, the encoder the exact PPCA
posterior (Tipping & Bishop 1999), optionally shifted or widened."""
import numpy as np
import torch

from latentzoo import VAE
from latentzoo.neural.vae_module import MIN_SCALE


def planted_linear_vae(W, mu, sigma, X, loc_shift=0.0, scale_factor=1.0):
    """A fitted-then-overwritten VAE: decoder weights W and bias mu, likelihood N(., sigma^2 I),
    encoder mean M^-1 W^T (x - mu) + loc_shift and scale sqrt(sigma^2 M^-1) * scale_factor, with
    M = W^T W + sigma^2 I (diagonal here: W has orthogonal columns)."""
    d, q = W.shape
    vae = VAE(n_components=q, encoder=torch.nn.Linear(d, 2 * q), decoder=torch.nn.Linear(q, d),
              likelihood=f"gaussian:{sigma}", max_epochs=1, verbose=0, random_state=0,
              device="cpu").fit(np.asarray(X, dtype=np.float32))
    m = np.diag(W.T @ W) + sigma**2
    A = W.T / m[:, None]
    s = np.sqrt(sigma**2 / m) * scale_factor
    enc, dec = vae.module_.encoder, vae.module_.decoder
    with torch.no_grad():
        dec.weight.copy_(torch.tensor(W))
        dec.bias.copy_(torch.tensor(mu))
        enc.weight.zero_()
        enc.weight[:q] = torch.tensor(A)
        enc.bias[:q] = torch.tensor(-A @ mu + loc_shift)
        enc.bias[q:] = torch.tensor(np.log(np.expm1(s - MIN_SCALE)))  # inverse of MIN_SCALE + softplus
    return vae
