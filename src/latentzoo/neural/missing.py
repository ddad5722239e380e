"""Missing values (NaN) in the neural models: what the encoder sees, what the loss counts.

A batch may hold NaN where an entry is missing. :class:`MissingInput` turns it into

* ``mask`` (B, D): True where observed;
* ``filled`` (B, D): the batch with every missing entry replaced by a fill value (the
  training column mean, or zero), finite everywhere, so that no NaN reaches a network
  or a gradient;
* the encoder's input: ``filled``, optionally followed by the mask as D more columns
  (``missing_indicator=True``), so the encoder can tell a filled entry from an observed one.

The likelihood term then covers the observed entries only,
``log p(x_obs | z) = sum_j mask_j log p(x_j | z)``
(:func:`~latentzoo.neural.bounds.log_px_given_z`): the values
under the mask never enter it. For the VAE this makes the ELBO / IWAE bound the MIWAE
bound of Mattei & Frellsen (2019, eq. 4); for the autoencoders the reconstruction error of
the observed entries. Data without NaN give ``mask`` all True: the usual objectives.

References
----------
Mattei & Frellsen (2019), MIWAE: Deep Generative Modelling and Imputation of Incomplete
Data Sets, ICML.
Nazabal, Olmos, Ghahramani & Valera (2020), Handling incomplete heterogeneous data using
VAEs (HI-VAE), Pattern Recognition 107 (zero filling and the observed-entry likelihood).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MissingInput", "MISSING_FILLS", "column_fill",
           "check_observed_columns"]

#: missing_fill name -> fill values from the training data (a float32 (D,) array)
MISSING_FILLS = {
    "mean": lambda X: np.nan_to_num(np.nanmean(X, axis=0), nan=0.0),
    "zero": lambda X: np.zeros(X.shape[1]),
}


def check_observed_columns(X: np.ndarray, who: str) -> None:
    """Training data must observe every column at least once (nothing to learn otherwise)."""
    if X.size and np.isnan(X).any():
        empty = np.flatnonzero(np.isnan(X).all(axis=0))
        if empty.size:
            raise ValueError(f"{who}: column {int(empty[0])} of X has no observed value (all NaN).")


def column_fill(X, how: str) -> np.ndarray:
    """Fill values per column of the training data ``X`` (NaN = missing): (D,) float32.

    A column with no observed value is filled with 0 under ``"mean"``.
    """
    import warnings

    with warnings.catch_warnings():  # an all-NaN column: nanmean warns, the fill is 0
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(MISSING_FILLS[how](np.asarray(X)), dtype=np.float32)


class MissingInput(nn.Module):
    """Mask, filled batch and encoder input of a batch with NaN for missing entries.

    Parameters
    ----------
    n_features : int
    indicator : bool
        Append the mask (1 observed, 0 missing) to the encoder input.

    The fill values are a buffer (saved with the weights), set by :meth:`set_fill`.
    """

    def __init__(self, n_features: int, indicator: bool = False):
        super().__init__()
        self.indicator = bool(indicator)
        self.register_buffer("fill", torch.zeros(n_features))

    @property
    def n_inputs(self) -> int:
        """Width of the encoder input: D, or 2 D with the indicator."""
        return self.fill.numel() * (2 if self.indicator else 1)

    def set_fill(self, values) -> None:
        self.fill.copy_(torch.as_tensor(np.asarray(values), dtype=self.fill.dtype))

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(filled, mask)`` of a batch (B, D) with NaN where missing."""
        mask = ~torch.isnan(x)  # (B, D)
        return torch.where(mask, x, self.fill.to(x.dtype)), mask

    def maybe_split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x, None)`` when the batch has no NaN, else :meth:`split`: the training hot path.

        On the CPU one reduction tells (a NaN anywhere makes the sum NaN), so complete
        batches pay no mask, no fill and no masked likelihood (``mask=None`` means all
        observed everywhere downstream); on an accelerator, where the test would be a host
        sync per step, the mask is always built. Under ``torch.compile`` too: the test is
        data-dependent control flow (``bool`` of a tensor), a graph break in every step,
        while in the compiled graph the mask and fill fuse into the kernels that follow.
        """
        if x.device.type == "cpu" and not torch.compiler.is_compiling() and not bool(torch.isnan(x.sum())):
            return x, None
        return self.split(x)

    def refill(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` with the missing entries set back to the fill value (after a corruption)."""
        return x if mask is None else torch.where(mask, x, self.fill.to(x.dtype))

    def encoder_input(self, filled: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, D) or (B, 2 D): the filled batch, then the mask if ``indicator`` (None: all observed)."""
        if not self.indicator:
            return filled
        if mask is None:
            mask = torch.ones_like(filled, dtype=torch.bool)
        return torch.cat([filled, mask.to(filled.dtype)], dim=-1)
