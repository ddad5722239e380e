"""Training checkpoints: a plain dict (nanoGPT style), written atomically, read safely.

``torch.save`` writes the dict (weights, optimiser state, RNG states, history) to a
temporary file renamed into place, so a kill never leaves a half-written checkpoint;
``torch.load(weights_only=True)`` reads it without executing code from the file.
A fingerprint of the model and data guards against resuming a different fit.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .._atomic import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path, state: dict, fingerprint: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save({"fingerprint": fingerprint, **state}, tmp)


def load_checkpoint(path, fingerprint: str) -> dict:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot resume: checkpoint {path} is unreadable (truncated or corrupted?): {e}") from None
    if not isinstance(ck, dict) or "fingerprint" not in ck:
        raise ValueError(f"cannot resume: {path} is not a latentzoo checkpoint")
    if ck["fingerprint"] != fingerprint:
        raise ValueError(
            f"cannot resume: checkpoint {path} was written by a different model or data "
            "(parameters, shape or seed differ); remove it or use another checkpoint_dir"
        )
    return ck
