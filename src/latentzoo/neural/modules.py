"""Network builders shared by every neural model: MLP and small convolutional nets.

``build_encoder(kind, n_in, n_out, ...)`` and ``build_decoder(kind, n_in, n_out, ...)``
come from a registry keyed by architecture (``"mlp"``, ``"conv"``); a user may pass any
``torch.nn.Module`` instead. Encoders map (B, D) -> (B, n_out); decoders map
(B, q) -> (B, n_out) raw outputs (the likelihood turns them into a distribution).
Conv nets reshape the flat input to the image shape internally, so every model sees flat
(B, D) data.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "mlp", "build_encoder", "build_decoder"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def mlp(sizes: list[int], activation: str = "relu") -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``, activation between (not after the last)."""
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (32, 64 channels) then a linear map to ``n_out``."""

    def __init__(self, image_shape: tuple[int, int], n_out: int, activation: str = "relu",
                 channels: tuple[int, int] = (32, 64)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        act = ACTIVATIONS[activation]
        c1, c2 = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1), act(),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), act(),  # (B, c2, H/4, W/4)
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.net(torch.zeros(1, 1, *self.image_shape)).shape[1]
        self.head = nn.Linear(n_flat, n_out)

    def forward(self, x):  # x: (B, H*W)
        return self.head(self.net(x.view(-1, 1, *self.image_shape)))


class ConvDecoder(nn.Module):
    """Linear map to a (64, H/4, W/4) map, two transposed convolutions back to (k, H, W)."""

    def __init__(self, image_shape: tuple[int, int], n_in: int, n_params: int = 1,
                 activation: str = "relu", channels: tuple[int, int] = (32, 64)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        h, w = self.image_shape
        self.h4, self.w4 = -(-h // 4), -(-w // 4)
        act = ACTIVATIONS[activation]
        c1, c2 = channels
        self.c2 = c2
        self.head = nn.Sequential(nn.Linear(n_in, c2 * self.h4 * self.w4), act())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), act(),  # (B, c1, 2*h4, 2*w4)
            nn.ConvTranspose2d(c1, n_params, 4, stride=2, padding=1),  # (B, k, 4*h4, 4*w4)
        )
        self.n_params = n_params

    def forward(self, z):  # z: (B, q)
        h, w = self.image_shape
        y = self.net(self.head(z).view(-1, self.c2, self.h4, self.w4))[:, :, :h, :w]
        # (B, k, H, W) -> (B, k*H*W): parameter-major, so out.chunk(k, -1) splits parameters
        return y.reshape(len(z), -1)


def _mlp_encoder(n_in, n_out, *, hidden, activation, image_shape=None):
    return mlp([n_in, *hidden, n_out], activation)


def _mlp_decoder(n_in, n_out, *, hidden, activation, image_shape=None, n_params=1):
    return mlp([n_in, *reversed(hidden), n_out * n_params], activation)


def _conv_encoder(n_in, n_out, *, hidden, activation, image_shape=None):
    _check_image_shape(image_shape, n_in)
    return ConvEncoder(image_shape, n_out, activation)


def _conv_decoder(n_in, n_out, *, hidden, activation, image_shape=None, n_params=1):
    _check_image_shape(image_shape, n_out)
    return ConvDecoder(image_shape, n_in, n_params, activation)


def _check_image_shape(image_shape, n_features):
    if image_shape is None:
        raise ValueError(
            "architecture='conv' needs the image shape: pass image_shape=(height, width) "
            "or data loaded with load_dataset (which records it)"
        )
    h, w = image_shape
    if h * w != n_features:
        raise ValueError(
            f"image_shape {tuple(image_shape)} has {h * w} pixels but the data have {n_features} features"
        )


#: architecture name -> (encoder builder, decoder builder)
ARCHITECTURES = {
    "mlp": (_mlp_encoder, _mlp_decoder),
    "conv": (_conv_encoder, _conv_decoder),
}


def build_encoder(kind: str, n_in: int, n_out: int, **kw) -> nn.Module:
    return ARCHITECTURES[kind][0](n_in, n_out, **kw)


def build_decoder(kind: str, n_in: int, n_out: int, **kw) -> nn.Module:
    return ARCHITECTURES[kind][1](n_in, n_out, **kw)
