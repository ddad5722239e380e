"""Resource guard: estimate a network's parameter memory before allocating it.

``VAE(hidden=(100_000_000,))`` on 64 features has about 1.3e10 parameters (52 GB of
float32 weights alone); allocating it gets the process killed by the kernel after a
minute, without a message. :func:`check_parameter_memory` builds the network on torch's
``meta`` device (shapes only, no storage), counts its parameters and refuses with the
figures when training would need more memory than the device has available.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

__all__ = ["parameter_count", "available_memory", "check_parameter_memory", "TRAINING_COPIES"]

#: float32 copies of the parameters that training holds: the weights, their gradients,
#: Adam's two moment estimates and the engine's best-weights copy (early stopping)
TRAINING_COPIES = 5
#: share of the available memory the parameter state may take (activations need the rest)
MEMORY_FRACTION = 0.8


def parameter_count(build: Callable[[], torch.nn.Module]) -> tuple[int, int]:
    """``(parameters, bytes)`` of the network ``build()`` makes, built on the meta device (no allocation)."""
    with torch.device("meta"):
        module = build()
    tensors = list(module.parameters()) + list(module.buffers())
    n = sum(t.numel() for t in module.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    return n, nbytes


def _cgroup_limit() -> int | None:
    """Memory left under a cgroup v2 limit (containers), or None where there is none."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as fh:
            return max(0, int(limit) - int(fh.read().strip()))
    except (OSError, ValueError):
        return None


def available_memory(device: torch.device) -> int:
    """Bytes available for new allocations on ``device``: free GPU memory on CUDA,
    ``MemAvailable`` (within any cgroup limit) on the host."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_limit()
    return min(avail, limit) if limit is not None else avail


def _human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return f"{nbytes:.3g} TB"  # pragma: no cover


def check_parameter_memory(estimator, build: Callable[[], torch.nn.Module], n_features: int,
                           device: torch.device) -> int:
    """Refuse (``ValueError`` with the figures) a network whose training state does not fit.

    Returns the estimated bytes of the training state (``TRAINING_COPIES`` times the
    parameter bytes) when it fits in ``MEMORY_FRACTION`` of :func:`available_memory`.
    """
    n, nbytes = parameter_count(build)
    need = TRAINING_COPIES * nbytes
    avail = available_memory(device)
    if need > MEMORY_FRACTION * avail:
        hidden = getattr(estimator, "hidden", None)
        raise ValueError(
            f"{type(estimator).__name__}(hidden={hidden!r}) on {n_features} features has {n:,} parameters "
            f"({_human(nbytes)} of weights): training needs about {_human(need)} (weights, gradients, Adam's "
            f"two moments and the best-weights copy) but {device.type} has {_human(avail)} available; "
            "use smaller hidden layers (parameter 'hidden')"
        )
    return need
