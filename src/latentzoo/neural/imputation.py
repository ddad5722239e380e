"""Imputation by importance sampling under a VAE (Mattei & Frellsen 2019, MIWAE, sec. 3).

With the encoder's ``q(z | x_obs)`` as proposal (it sees the filled input), the weights
``w_k = p(x_obs | z_k) p(z_k) / q(z_k | x_obs)``, ``z_k ~ q``, normalised to ``w~_k``, give

* single imputation, the self-normalised importance-sampling estimate
  ``E[x_mis | x_obs] ~ sum_k w~_k E[x_mis | z_k]`` (MIWAE eq. 9; consistent as k grows);
* multiple imputation by sampling-importance-resampling: draw ``z`` among the ``z_k``
  with probabilities ``w~_k``, then ``x_mis ~ p(x_mis | z)`` (MIWAE sec. 3.2).

Both work on a batch with NaN for missing entries; the samples are drawn ``chunk`` at a
time with running normalisers (memory ``O(chunk * B * D)`` for any k).
"""
from __future__ import annotations

import torch

from .bounds import log_importance_weights, log_px_given_z

__all__ = ["importance_mean", "importance_resample"]


def importance_mean(module, x: torch.Tensor, *, n_importance: int, chunk: int) -> torch.Tensor:
    """Self-normalised IS estimate of ``E[x | x_obs]`` for a batch (B, D) with NaN; the
    observed entries are returned as given (the estimate replaces the missing ones)."""
    filled, mask = module.inputs.split(x)
    qz = module.encode(filled, mask)
    top = torch.full((len(x),), -torch.inf, dtype=torch.float64, device=x.device)  # running max log w
    norm = torch.zeros(len(x), dtype=torch.float64, device=x.device)  # sum_k exp(log w_k - top)
    acc = torch.zeros(x.shape, dtype=torch.float64, device=x.device)  # sum_k exp(...) E[x | z_k]
    done = 0
    while done < n_importance:
        kc = min(chunk, n_importance - done)
        z = qz.sample((kc,))  # (kc, B, q)
        gen = module.generative(z)
        log_w = log_importance_weights(log_px_given_z(filled, gen["px"], mask), qz, gen["pz"], z).double()  # (kc, B)
        new_top = torch.maximum(top, log_w.max(0).values)
        scale = torch.exp(top - new_top)  # rescales what was accumulated (0 at the start)
        w = torch.exp(log_w - new_top)  # (kc, B)
        mean = gen["px"].mean.double()  # (kc, B, D)
        norm = norm * scale + w.sum(0)
        acc = acc * scale[:, None] + torch.einsum("kb,kbd->bd", w, mean)
        top = new_top
        done += kc
    est = (acc / norm[:, None]).to(x.dtype)
    return torch.where(mask, filled, est)


def importance_resample(module, x: torch.Tensor, *, n_draws: int, n_importance: int, chunk: int) -> torch.Tensor:
    """``n_draws`` sampling-importance-resampling draws of ``x_mis | x_obs``: (B, n_draws, D),
    every draw equal to ``x`` on its observed entries."""
    filled, mask = module.inputs.split(x)
    qz = module.encode(filled, mask)
    zs, lws = [], []
    done = 0
    while done < n_importance:
        kc = min(chunk, n_importance - done)
        z = qz.sample((kc,))  # (kc, B, q)
        gen = module.generative(z)
        log_w = log_importance_weights(log_px_given_z(filled, gen["px"], mask), qz, gen["pz"], z)  # (kc, B)
        zs.append(z)
        lws.append(log_w.double())
        done += kc
    z, log_w = torch.cat(zs), torch.cat(lws)  # (K, B, q), (K, B)
    probs = torch.softmax(log_w, 0).T  # (B, K)
    pick = torch.multinomial(probs, n_draws, replacement=True)  # (B, n_draws)
    rows = torch.arange(len(x), device=x.device)[:, None]
    z_sel = z[pick, rows]  # (B, n_draws, q)
    draws = module.generative(z_sel)["px"].sample()  # (B, n_draws, D)
    return torch.where(mask[:, None, :], filled[:, None, :], draws.to(x.dtype))
