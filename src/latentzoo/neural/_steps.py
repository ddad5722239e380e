"""What every training step of the engine does besides the model: the optimiser and the
running sums of the logged terms, written for a low per-step cost (issue 16: no
framework tax). The optimiser is Adam; the sums stay on the device (no host sync).
"""
from __future__ import annotations

import torch

__all__ = ["TermSums", "make_optimizer"]


def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam, fused (one kernel for every parameter) where torch offers it for ``device``,
    else the multi-tensor ``foreach`` implementation; the update is Adam's either way."""
    params = list(params)
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, ValueError):  # a build or dtype without the fused kernel
            pass
    return torch.optim.Adam(params, lr=lr, foreach=True)


class TermSums:
    """Running per-term sums of an epoch, on the device: one stacked add per step.

    The first step fixes the term names; each later step stacks its terms into one
    (T, B) tensor and adds its row sums to a float64 accumulator (no host sync, no
    per-term temporaries), under ``no_grad``.
    """

    def __init__(self):
        self.names: list[str] | None = None
        self.total: torch.Tensor | None = None

    @torch.no_grad()
    def add(self, terms: dict) -> None:
        if not terms:
            return
        if self.names is None:
            self.names = list(terms)
        stacked = torch.stack([terms[k] for k in self.names]).sum(1)  # (T,)
        self.total = stacked.double() if self.total is None else self.total.add_(stacked)

    def as_dict(self) -> dict:
        if self.names is None:
            return {}
        return {k: self.total[i] for i, k in enumerate(self.names)}
