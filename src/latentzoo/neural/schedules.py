"""Per-epoch schedules of the training loop: the learning rate and the inputs of the objective.

- :data:`LR_SCHEDULES` -- learning-rate schedules stepped once per epoch ("plateau",
  "cosine", "constant-cosine"), chosen by the ``lr_schedule`` training setting.
- :func:`linear_warmup` -- a value ramped linearly over the first epochs: the VAE's KL
  weight beta_t, which the engine passes to every step of epoch t
  (``train(..., schedules={"kl_weight": linear_warmup(beta, kl_warmup)})``).

References
----------
Loshchilov & Hutter (2017), SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR (cosine).
Hu et al. (2024), MiniCPM: Unveiling the Potential of Small Language Models with Scalable
Training Strategies, arXiv:2404.06395 (warmup-stable-decay: a constant rate, then a decay);
Hagele et al. (2024), Scaling Laws and Compute-Optimal Training Beyond Fixed Training
Durations, NeurIPS (constant rate and cool-down; "constant-cosine").
Bowman et al. (2016), Generating Sentences from a Continuous Space, CoNLL (KL annealing).
Sonderby et al. (2016), Ladder Variational Autoencoders, NeurIPS (linear KL warm-up).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["LR_SCHEDULES", "linear_warmup", "step_lr_schedule"]


#: every schedule's lowest rate, as a share of lr
FLOOR = 1e-3


def _plateau(opt, cfg):
    # halve the rate when the monitored loss has not improved for a third of the early-
    # stopping patience, so the rate decays a few times before training stops
    wait = max(1, (cfg.patience or 9) // 3)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=wait, min_lr=cfg.lr * FLOOR)


def _cosine(opt, cfg):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs, eta_min=cfg.lr * FLOOR)


#: the share of ``max_epochs`` that "constant-cosine" holds the rate before annealing it
HOLD_FRACTION = 0.85


def _constant_cosine(opt, cfg):
    # lr for the first round(HOLD_FRACTION T) epochs, then SGDR's cosine to lr/1000 over the
    # rest: a constant rate with a cool-down (warmup-stable-decay without the warm-up)
    total = int(cfg.max_epochs)
    hold = int(round(HOLD_FRACTION * total))

    def factor(epoch: int) -> float:
        if epoch < hold:
            return 1.0
        t = min(1.0, (epoch - hold) / max(1, total - hold))
        return FLOOR + (1.0 - FLOOR) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


#: learning-rate schedules, stepped once per epoch: name -> (optimiser, EngineConfig) -> scheduler
LR_SCHEDULES = {"plateau": _plateau, "cosine": _cosine, "constant-cosine": _constant_cosine}


def step_lr_schedule(sched, monitored: float) -> None:
    """Step a scheduler once at the end of an epoch (the plateau one watches ``monitored``)."""
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sched.step(monitored)
    elif sched is not None:
        sched.step()


def linear_warmup(value: float, epochs: int) -> Callable[[int], float]:
    """Per-epoch schedule ``value * min(1, (epoch + 1) / epochs)`` (epochs counted from 0).

    A linear ramp reaching ``value`` at epoch ``epochs - 1``; ``epochs = 0`` gives the
    constant ``value``.
    """
    if epochs > 0:
        return lambda epoch: value * min(1.0, (epoch + 1) / epochs)
    return lambda epoch: value
