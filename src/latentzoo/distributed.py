"""Multi-process data-parallel training through PyTorch's own engine (DDP + torchrun).

latentzoo never runs its own process group logic: launch with ``torchrun`` and call
:func:`init_from_env` (the CLI does it for you), then fit as usual. The training engine
wraps the network in ``torch.nn.parallel.DistributedDataParallel``, gives each rank its
shard of every epoch's permutation, all-reduces losses so early stopping agrees, and only
rank 0 logs, checkpoints and saves.

Examples
--------
One machine, 4 GPUs::

    torchrun --nproc-per-node 4 -m latentzoo fit vae data.npy --out run/ --max_epochs 50

Two machines (run on each, with its own ``--node-rank``)::

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 \\
        --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m latentzoo fit vae data.npy --out run/

From Python, in a script started by ``torchrun``::

    from latentzoo import VAE, distributed
    distributed.init_from_env()
    vae = VAE(n_components=16, random_state=0).fit(X)   # every rank: same seed, same X
    vae.save("vae.safetensors")                          # written by rank 0 only
    distributed.shutdown()
"""
from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

__all__ = ["init_from_env", "shutdown", "rank", "world_size", "is_main_process", "launched_by_torchrun"]


def launched_by_torchrun() -> bool:
    """True when torchrun's environment (``WORLD_SIZE`` > 1, ``RANK``) is present."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(backend: str | None = None) -> bool:
    """Initialise ``torch.distributed`` from torchrun's environment variables.

    Parameters
    ----------
    backend : {"nccl", "gloo"} or None
        Default: NCCL when CUDA is available, else gloo (CPU).

    Returns
    -------
    bool
        True if a process group is (now) initialised, False for a single process.
    """
    if dist.is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # device="auto" then means this rank's GPU
    dist.init_process_group(backend=backend)
    logger.info("rank %d/%d initialised (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return True


def shutdown(*, wait: bool = True) -> None:
    """Destroy the process group if one is initialised.

    ``wait`` (after a successful fit): first a barrier, so no rank tears its gloo connections
    down while a peer is still finishing its last collective; without it a rank sometimes
    aborted at exit ("terminate called without an active exception", SIGABRT). After an
    error, ``wait=False`` destroys at once (a barrier could wait for a rank that is gone).
    """
    if dist.is_available() and dist.is_initialized():
        try:
            if wait:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def rank() -> int:
    """This process's rank (0 without an initialised process group): the one rank lookup
    of latentzoo (the engine shards and logs by it)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes training together (1 without an initialised process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (or a single process): the one that logs, checkpoints and saves."""
    return rank() == 0
