"""The one training loop of latentzoo: every neural model (AE, DAE, CAE, VAE) trains here.

A model is a ``torch.nn.Module`` whose ``forward(x, **inputs)`` returns a :class:`LossOutput`
(the scalar to minimise and named per-sample terms for logging). Per-epoch inputs of the
objective, such as the VAE's KL weight beta_t during a warm-up
(:func:`~latentzoo.neural.schedules.linear_warmup`), are *schedules of the loop*:
``train(..., schedules={"kl_weight": f})`` passes ``kl_weight=f(epoch)`` to every training
and validation step of the epoch and records the value in ``history[name]``. What the loop
reads is an :class:`EngineConfig`, made from the one table of training settings
(:mod:`latentzoo.neural.settings`). The loop, read top to bottom: shuffle, slice batches,
step Adam, estimate the validation loss, stop early and restore the best weights,
checkpoint every few epochs so a killed fit can resume and end where an uninterrupted one
would.

In-memory data are tensors on the device sliced by a shuffled index (no DataLoader
overhead); arrays that do not fit (memory-mapped ``.npy``) stream through a DataLoader.
Under ``torchrun`` (``torch.distributed`` initialised) the module is wrapped in
``DistributedDataParallel``, each rank trains on its shard of every epoch's permutation,
validation losses are all-reduced so early stopping agrees, and only rank 0 logs and
writes checkpoints.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from ..distributed import rank as _rank, world_size as _world_size
from ._steps import TermSums, make_optimizer
from .checkpoint import load_checkpoint, save_checkpoint
from .schedules import LR_SCHEDULES, linear_warmup, step_lr_schedule
from .settings import EngineConfig

logger = logging.getLogger(__name__)

__all__ = ["LossOutput", "TrainingDiverged", "EngineConfig", "train", "resolve_device",
           "TensorBatches", "ArrayBatches", "linear_warmup", "LR_SCHEDULES"]  # the last two: from .schedules


class LossOutput(NamedTuple):
    """What a model's ``forward`` returns: the loss and its named per-sample terms."""

    loss: torch.Tensor  # () scalar: the batch mean of the per-sample objective
    terms: dict  # name -> (B,) per-sample tensors, summed over dimensions (nats for VAEs)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def resolve_device(device) -> torch.device:
    """``"auto"``: CUDA when present, else CPU; anything else as ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):  # under torchrun, the rank's own GPU (set by init_from_env)
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"invalid device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


# ----------------------------------------------------------------------------- batches
def _epoch_order(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """This rank's row order for one epoch: a permutation (``generator`` None: in order),
    cut into equal shards under DDP so every rank takes the same number of steps."""
    rank, world = _rank(), _world_size()
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if world > 1:
        order = order[: n - n % world][rank::world]
    return order


class TensorBatches:
    """In-memory data on the device, sliced by a shuffled index (this rank's shard)."""

    def __init__(self, X: torch.Tensor, batch_size: int):
        self.X, self.batch_size = X, batch_size

    def __len__(self) -> int:
        return len(self.X)

    def epoch(self, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
        perm = _epoch_order(len(self.X), generator).to(self.X.device)
        for i in range(0, len(perm), self.batch_size):
            yield self.X[perm[i : i + self.batch_size]]  # (B, D)


class _RowBatches(torch.utils.data.Dataset):
    def __init__(self, X: np.ndarray, batches: list[np.ndarray]):
        self.X, self.batches = X, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        idx = np.sort(self.batches[i])  # sorted rows: sequential reads from a memory map
        return torch.from_numpy(np.asarray(self.X[idx], dtype=np.float32))


class ArrayBatches:
    """Rows of a (memory-mapped) array streamed through a DataLoader, bounded memory."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, batch_size: int, device: torch.device,
                 num_workers: int = 0):
        self.X, self.rows, self.batch_size = X, rows, batch_size
        self.device, self.num_workers = device, num_workers

    def __len__(self) -> int:
        return len(self.rows)

    def epoch(self, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
        rows = self.rows[_epoch_order(len(self.rows), generator).numpy()]
        batches = [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        pin = self.device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            _RowBatches(self.X, batches), batch_size=None, shuffle=False,
            num_workers=self.num_workers, pin_memory=pin,
        )
        for xb in loader:
            yield xb.to(self.device, non_blocking=pin)


# ----------------------------------------------------------------------------- helpers
def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()  # full precision: no autocast context per step
    return torch.autocast(device.type, dtype=dtype)


def _all_true(ok: torch.Tensor, world: int) -> bool:
    """Whether the flag ``ok`` holds on every rank (all ranks stop together, none hangs)."""
    if world > 1:
        flag = ok.to(torch.float32).reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        ok = flag[0] > 0
    return bool(ok)


def _all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    if _world_size() > 1:
        dist.all_reduce(values)
    return values


@torch.no_grad()
def estimate_loss(model, batches, inputs: dict, device: torch.device, precision: str) -> dict:
    """Mean loss and terms over a dataset, in eval mode (all ranks' shards when distributed);
    ``inputs`` are the epoch's scheduled keyword inputs of ``model``."""
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    for xb in batches.epoch(None):
        with _autocast(device, precision):
            out = model(xb, **inputs)
        b = len(xb)
        sums["loss"] = sums.get("loss", 0.0) + float(out.loss) * b
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.float().sum())
        n += b
    keys = sorted(sums)
    tot = _all_reduce_sum(torch.tensor([sums[k] for k in keys] + [n], dtype=torch.float64, device=device))
    model.train()
    return {k: float(tot[i] / tot[-1]) for i, k in enumerate(keys)}


def _progress(cfg: EngineConfig, start: int):
    """An epoch bar on a terminal; without one, a log line every tenth of ``max_epochs``."""
    from .._progress import progress

    rank = _rank()
    return progress(cfg.max_epochs, f"{cfg.desc} epoch", verbose=cfg.verbose if rank == 0 else 0, initial=start,
                    unit="epochs")


# ----------------------------------------------------------------------------- the loop
def train(module: torch.nn.Module, train_data, val_data, cfg: EngineConfig, *, seed: int,
          device: torch.device, resume: bool = False,
          schedules: dict[str, Callable[[int], float]] | None = None) -> dict:
    """Train ``module`` in place with Adam; return the per-epoch history.

    Parameters
    ----------
    module : torch.nn.Module
        ``module(x, **inputs)`` returns a :class:`LossOutput`; already on ``device``.
    train_data, val_data : TensorBatches or ArrayBatches
        ``val_data`` may be None: early stopping then watches the training loss.
    cfg : EngineConfig
    seed : int
        Seeds the shuffling generator; the caller seeds torch's global generator (used by
        corruptions and reparametrised samples) inside ``torch.random.fork_rng``.
    resume : bool
        Continue from the last checkpoint in ``cfg.checkpoint_dir`` (if any).
    schedules : dict, optional
        Keyword input of ``module`` -> ``f(epoch)`` (epochs from 0), e.g.
        ``{"kl_weight": linear_warmup(beta, 10)}``: every step of epoch t gets
        ``kl_weight=f(t)``, training and validation alike.

    Returns
    -------
    history : dict of lists
        ``train_loss``, ``val_loss`` and ``train_<term>``/``val_<term>`` per epoch, the
        value of every schedule per epoch (``history["kl_weight"]``), the learning rate
        (``lr``), ``epoch_time``, plus ``best_epoch`` and ``stopped_epoch``.

    Raises
    ------
    TrainingDiverged
        When a batch loss is NaN or inf (the module is left with its last finite
        weights restored from the best epoch, never with NaN weights).
    """
    rank, world = _rank(), _world_size()
    model = module
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)
    step_fn = torch.compile(model) if cfg.compile else model
    opt = make_optimizer(module.parameters(), cfg.lr, device)
    sched = LR_SCHEDULES[cfg.lr_schedule](opt, cfg) if cfg.lr_schedule else None
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    gen = torch.Generator().manual_seed(seed)

    history: dict[str, list] = {"train_loss": [], "val_loss": []}
    best = {"loss": math.inf, "epoch": -1, "state": copy.deepcopy(module.state_dict())}
    bad_epochs, start = 0, 0
    ckpt_path = Path(cfg.checkpoint_dir) / "checkpoint.pt" if cfg.checkpoint_dir else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, cfg.fingerprint)
        module.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None:
            sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["shuffle_rng"])
        torch.set_rng_state(ck["torch_rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
        history, best, bad_epochs, start = ck["history"], ck["best"], ck["bad_epochs"], ck["epoch"]
        stopped = ck["stopped"]
        logger.info("resumed from %s at epoch %d", ckpt_path, start)
    else:
        stopped = False

    # how often the loss is checked for NaN/inf: every step on CPU (free), every 32 steps on an
    # accelerator, where a check is a host sync; a NaN step in between is undone by restoring
    # the best weights before raising
    check_every = 1 if device.type == "cpu" else 32
    host_check = device.type == "cpu"
    bar = _progress(cfg, start)
    model.train()
    schedules = schedules or {}
    for epoch in range(start, start if stopped else cfg.max_epochs):
        inputs = {name: f(epoch) for name, f in schedules.items()}  # this epoch's scheduled inputs
        term_sums = TermSums()  # on the device: no host sync per step
        loss_sum = 0.0 if host_check else torch.zeros((), dtype=torch.float64, device=device)
        n = 0
        t_epoch = time.perf_counter()
        finite = torch.ones((), dtype=torch.bool, device=device)  # every loss since the last check
        for step, xb in enumerate(train_data.epoch(gen)):
            with _autocast(device, cfg.precision):
                out = step_fn(xb, **inputs)
            loss = out.loss.detach()
            b = len(xb)
            if host_check:  # CPU: reading the loss costs nothing; one float, no tensor flags
                lv = float(loss)
                ok = math.isfinite(lv)
                if world > 1:  # every rank takes part, so all stop together
                    ok = _all_true(torch.tensor(ok), world)
                if not ok:
                    module.load_state_dict(best["state"])
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch + 1} (batch {step + 1}): the loss became "
                        f"{lv}; try a smaller learning rate than lr={cfg.lr} or rescale the data"
                    )
                loss_sum += lv * b
            else:
                finite = finite & torch.isfinite(loss)
                if step % check_every == 0 and not _all_true(finite, world):
                    module.load_state_dict(best["state"])
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch + 1} (batch {step + 1}): the loss became "
                        f"{float(loss)}; try a smaller learning rate than lr={cfg.lr} or rescale the data"
                    )
                loss_sum = loss_sum + loss.double() * b
            opt.zero_grad(set_to_none=True)
            if scaler.is_enabled():
                scaler.scale(out.loss).backward()
                scaler.step(opt)
                scaler.update()
            else:  # fp32/bf16: no scaling, no scaler bookkeeping per step
                out.loss.backward()
                opt.step()
            term_sums.add(out.terms)
            n += b
        sums = {"loss": torch.as_tensor(loss_sum, dtype=torch.float64, device=device), **term_sums.as_dict()}
        if not _all_true(finite, world):  # a non-finite loss since the last check
            module.load_state_dict(best["state"])
            raise TrainingDiverged(f"training diverged at epoch {epoch + 1}: the loss became NaN or inf; "
                                   f"try a smaller learning rate than lr={cfg.lr} or rescale the data")
        keys = sorted(sums)
        tot = _all_reduce_sum(torch.stack([torch.as_tensor(sums[k], dtype=torch.float64, device=device)
                                           for k in keys] + [torch.tensor(float(n), dtype=torch.float64, device=device)]))
        train_stats = {k: float(tot[i] / tot[-1]) for i, k in enumerate(keys)}
        history.setdefault("epoch_time", []).append(time.perf_counter() - t_epoch)  # s, training steps only
        val_stats = estimate_loss(model, val_data, inputs, device, cfg.precision) if val_data is not None else None
        for name, v in inputs.items():
            history.setdefault(name, []).append(v)
        for k, v in train_stats.items():
            history.setdefault("train_" + k, []).append(v)
        if val_stats is not None:
            for k, v in val_stats.items():
                history.setdefault("val_" + k, []).append(v)
        monitored = val_stats["loss"] if val_stats is not None else train_stats["loss"]
        if not math.isfinite(monitored):
            module.load_state_dict(best["state"])
            raise TrainingDiverged(
                f"training diverged at epoch {epoch + 1}: the {'validation' if val_stats else 'training'} "
                f"loss is {monitored}; try a smaller learning rate than lr={cfg.lr}"
            )
        step_lr_schedule(sched, monitored)
        history.setdefault("lr", []).append(opt.param_groups[0]["lr"])  # the rate of the next epoch
        if monitored < best["loss"]:
            best = {"loss": monitored, "epoch": epoch, "state": copy.deepcopy(module.state_dict())}
            bad_epochs = 0
        else:
            bad_epochs += 1
        bar.update(1)
        bar.set_postfix(train=f"{train_stats['loss']:.4g}",
                        val=f"{val_stats['loss']:.4g}" if val_stats else "-")
        stopped = cfg.patience is not None and bad_epochs >= cfg.patience
        if ckpt_path is not None and rank == 0 and ((epoch + 1) % cfg.checkpoint_every == 0 or stopped):
            save_checkpoint(ckpt_path, {
                "model": module.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "shuffle_rng": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "history": history, "best": best, "bad_epochs": bad_epochs, "epoch": epoch + 1,
                "stopped": stopped,
            }, cfg.fingerprint)
        if stopped:
            break
    bar.close()
    module.load_state_dict(best["state"])  # early stopping restores the best weights
    module.eval()
    history["best_epoch"] = best["epoch"] + 1
    history["stopped_epoch"] = len(history["train_loss"])
    return history
