"""Input corruptions of denoising autoencoders, from a registry.

A corruption maps a clean batch ``x`` (B, D) to a corrupted ``x~`` drawn afresh at every
call from torch's global generator (which the training engine seeds, so fits are
reproducible). The denoising autoencoder reconstructs the *clean* ``x`` from ``x~``.

Names carry one numeric argument: ``"gaussian:0.1"`` (additive noise, std 0.1),
``"masking:0.25"`` (each entry zeroed with probability 0.25), ``"salt-and-pepper:0.1"``
(each entry replaced by 0 or 1 with probability 0.1). Add a family with
:func:`register_corruption`.

References
----------
Vincent, Larochelle, Bengio & Manzagol (2008), Extracting and composing robust features
with denoising autoencoders (masking noise).
Vincent et al. (2010), Stacked denoising autoencoders, JMLR 11, section 4.2 (Gaussian,
masking and salt-and-pepper corruptions).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .._spec import accepts, from_spec

__all__ = ["Corruption", "GaussianNoise", "Masking", "SaltAndPepper", "CORRUPTIONS",
           "register_corruption", "make_corruption", "is_valid_corruption"]


class Corruption:
    """Base: ``__call__(x) -> x~`` (same shape), ``spec()`` the registry string."""

    name: str = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _arg(self) -> float:
        raise NotImplementedError

    def spec(self) -> str:
        return f"{self.name}:{self._arg():g}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._arg():g})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._arg() == self._arg()

    def __hash__(self) -> int:
        return hash((type(self), self._arg()))


def _probability(p, who: str, *, upper_open: bool) -> float:
    p = float(p)
    if not (0 <= p < 1 if upper_open else 0 <= p <= 1):
        raise ValueError(f"{who}: the probability must be in [0, {'1)' if upper_open else '1]'}, got {p}")
    return p


class GaussianNoise(Corruption):
    """Additive isotropic noise ``x~ = x + std * eps``, ``eps ~ N(0, I)``."""

    name = "gaussian"

    def __init__(self, std: float = 0.1):
        std = float(std)
        if not (std > 0 and math.isfinite(std)):
            raise ValueError(f"gaussian corruption: the standard deviation must be > 0, got {std}")
        self.std = std

    def _arg(self):
        return self.std

    def __call__(self, x):
        return x + self.std * torch.randn_like(x)


class Masking(Corruption):
    """Masking (drop-out) noise: each entry set to 0 independently with probability ``p``.

    As in the classic denoising autoencoder (Vincent et al. 2008) the surviving entries
    are *not* rescaled by ``1 / (1 - p)`` (unlike ``torch.nn.Dropout``).
    """

    name = "masking"

    def __init__(self, p: float = 0.25):
        self.p = _probability(p, "masking corruption", upper_open=True)

    def _arg(self):
        return self.p

    def __call__(self, x):
        keep = torch.rand_like(x) >= self.p  # (B, D), True with probability 1 - p
        return x * keep


class SaltAndPepper(Corruption):
    """Each entry, with probability ``p``, replaced by 0 or 1 (equal chance); others kept.

    0 and 1 are the minimum and maximum of data in [0, 1] (e.g. grey-level images).
    """

    name = "salt-and-pepper"

    def __init__(self, p: float = 0.1):
        self.p = _probability(p, "salt-and-pepper corruption", upper_open=False)

    def _arg(self):
        return self.p

    def __call__(self, x):
        u = torch.rand_like(x)
        hit = u < self.p  # (B, D) corrupted entries
        # within a hit, u / p is uniform on [0, 1): its halves pick pepper (0) or salt (1)
        salt = (u < 0.5 * self.p).to(x.dtype)
        return torch.where(hit, salt, x)


CORRUPTIONS: dict[str, Callable[..., Corruption]] = {}


def register_corruption(name: str, factory: Callable[..., Corruption]) -> None:
    """Add a corruption family; ``factory(*args)`` gets the numbers after ``name:``."""
    CORRUPTIONS[name] = factory


for _cls in (GaussianNoise, Masking, SaltAndPepper):
    register_corruption(_cls.name, _cls)


def make_corruption(spec) -> Corruption:
    """A :class:`Corruption` from an instance or a string ``"name"`` / ``"name:arg"``."""
    return from_spec(spec, registry=CORRUPTIONS, base=Corruption, kind="corruption", param="noise",
                     example="gaussian:0.1")


#: whether a spec names a registered corruption with valid arguments (parameter validation)
is_valid_corruption = accepts(make_corruption)
