"""The plain-PyTorch references the benchmarks time latentzoo against (no latentzoo inside).

Written the way a researcher writes a VAE in an afternoon, with nothing of latentzoo:
``nn.Sequential`` networks, ``binary_cross_entropy_with_logits`` as the Bernoulli
log-likelihood, the Gaussian KL in closed form (Kingma & Welling 2014, appendix B),
Adam. ``train_epoch`` is the minimal training loop (ELBO or the IWAE bound of Burda et
al. 2016, Eq. 8); ``importance_log_px`` the plain batched importance-sampling estimate
of ``log p(x)`` (k samples per row, chunked, ``logsumexp``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def mlp(sizes, act=nn.Tanh):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class PlainVAE(nn.Module):
    """The IWAE paper's 784-200-200-50 tanh VAE with a Bernoulli decoder (by default)."""

    def __init__(self, d=784, q=50, hidden=(200, 200), act=nn.Tanh):
        super().__init__()
        self.enc = mlp([d, *hidden, 2 * q], act)
        self.dec = mlp([q, *hidden[::-1], d], act)

    def encode(self, x):
        loc, raw = self.enc(x).chunk(2, -1)
        return loc, F.softplus(raw) + 1e-4  # (B, q) each

    def elbo_loss(self, x):
        loc, scale = self.encode(x)
        z = loc + scale * torch.randn_like(loc)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(-1)
        kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1).sum(-1) - scale.log().sum(-1)
        return (rec + kl).mean()

    def log_weights(self, x, loc, scale, k):
        """log p(x|z) + log p(z) - log q(z|x) for k draws per row: (k, B)."""
        eps = torch.randn(k, *loc.shape, dtype=loc.dtype, device=loc.device)
        z = loc + scale * eps  # (k, B, q)
        logits = self.dec(z.reshape(-1, z.shape[-1])).reshape(k, *x.shape)
        log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        log_pz = -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * LOG_2PI)
        log_qz = -0.5 * (eps.pow(2).sum(-1) + z.shape[-1] * LOG_2PI) - scale.log().sum(-1)
        return log_px + log_pz - log_qz

    def iwae_loss(self, x, k):
        loc, scale = self.encode(x)
        return -(torch.logsumexp(self.log_weights(x, loc, scale, k), 0) - math.log(k)).mean()


def train_epoch(model, opt, X, batch_size, gen, k=None):
    """One epoch of the minimal loop: shuffle, slice, loss, backward, Adam (ELBO, or IWAE_k)."""
    perm = torch.randperm(len(X), generator=gen)
    for i in range(0, len(X), batch_size):
        xb = X[perm[i : i + batch_size]]
        loss = model.elbo_loss(xb) if k is None else model.iwae_loss(xb, k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def importance_log_px(model, X, k, chunk):
    """Plain batched importance sampling: ``logmeanexp_k log w_k`` per row, ``chunk`` samples at a time."""
    loc, scale = model.encode(X)
    acc = torch.full((len(X),), -math.inf, dtype=torch.float64, device=X.device)
    for s in range(0, k, chunk):
        lw = model.log_weights(X, loc, scale, min(chunk, k - s))
        acc = torch.logaddexp(acc, torch.logsumexp(lw.double(), 0))
    return acc - math.log(k)
