"""Autoencoder training throughput: latentzoo vs a minimal hand-written PyTorch loop.

Same architecture (784-512-256-16 ReLU MLP encoder, mirrored decoder), Bernoulli
likelihood (BCE with logits summed over pixels), Adam, batch 128 and 512, on MNIST-sized
data (random [0, 1] data of 60000 x 784, or ``--data file.npy``). Whole runs alternate
(latentzoo fit, minimal loop, then the other order, ...) in one process; medians of the
per-epoch samples/s after each run's warm-up epoch, and the ratio of CPU times of the
torch thread (less sensitive to a loaded machine). latentzoo's epoch times come from its
``history_["epoch_time"]``: the training steps with all their bookkeeping (loss
accumulation, NaN checks), not the set-up; it trains on all the rows, as the minimal
loop does (``validation_fraction=0``: no validation pass, so the CPU time of its whole
``fit`` is the training steps plus the set-up).

Second table: step cost of the contractive AE relative to the plain AE (same module,
forward + backward + Adam, batch 128), for code sizes 2, 4, 8, 16, 32: the exact
||J_f||_F^2 and the Hutchinson estimate with m = 1 and 4 probes
(``contractive_estimator="hutchinson"``), and the exact norm by the generic torch.func
path (the encoder hidden behind an opaque forward) for comparison. The cases alternate
block of steps by block of steps; medians of the CPU time per step. Targets: exact <= 2x for q <= 8, Hutchinson <= 2x at q = 32. Beside the measured
exact ratio, the ratio of multiply-adds (``contractive_flop_ratio``: the q rows of J and
their backward against a plain step's forward and backward), about 1 + q/2: what the
arithmetic alone costs, whatever the batching.

    python benchmarks/bench_autoencoder.py [--threads N] [--epochs K] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from latentzoo.neural.jacobian import contractive_flop_ratio


def minimal_epoch(enc, dec, opt, X, batch_size, gen):
    """The reference: the shortest correct training loop."""
    perm = torch.randperm(len(X), generator=gen)
    for i in range(0, len(X), batch_size):
        xb = X[perm[i : i + batch_size]]
        logits = dec(enc(xb))
        loss = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def throughput(X, batch_size, epochs, rounds):
    """Samples/s of training epochs: latentzoo (from its history_["epoch_time"], training
    steps only) and the minimal loop, alternating whole runs (the order flips every round);
    medians without each run's first (warm-up) epoch. Second measure, less sensitive to the
    other processes of a shared machine: CPU time of this (the only torch) thread over
    all epochs, warm-up included, for latentzoo its whole ``fit`` (the set-up included:
    conservative)."""
    from latentzoo import Autoencoder

    n_train = len(X)
    torch.manual_seed(0)
    enc, dec = mlp([784, 512, 256, 16]), mlp([16, 256, 512, 784])
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    Xt, gen = torch.from_numpy(X), torch.Generator().manual_seed(0)
    ae = Autoencoder(16, hidden=(512, 256), likelihood="bernoulli", batch_size=batch_size, max_epochs=epochs,
                     patience=None, validation_fraction=0.0, device="cpu", random_state=0, verbose=0)
    ref, lz, ref_cpu, lz_cpu = [], [], [], []

    def run_lz():
        c = time.thread_time()
        lz.extend(n_train / t for t in ae.fit(X).history_["epoch_time"][1:])
        lz_cpu.append(n_train * epochs / (time.thread_time() - c))

    def run_ref():
        times, c = [], time.thread_time()
        for _ in range(epochs):
            t = time.perf_counter()
            minimal_epoch(enc, dec, opt, Xt, batch_size, gen)
            times.append(time.perf_counter() - t)
        ref_cpu.append(len(X) * epochs / (time.thread_time() - c))
        ref.extend(len(X) / t for t in times[1:])

    for r in range(rounds):
        for run in ((run_lz, run_ref) if r % 2 == 0 else (run_ref, run_lz)):
            run()
    med = statistics.median
    return med(ref), med(lz), med(lz_cpu) / med(ref_cpu)


class Opaque(nn.Module):
    """The same encoder behind a forward of its own: not an MLP to ``mlp_layers``, so the
    exact penalty takes the generic torch.func path (vmap of jacrev, double backward)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def step_timer(X, q, contractive, batch_size=128, opaque=False, **kw):
    """A function timing ``k`` training steps of latentzoo's module (forward + backward +
    Adam): CPU time of this (the only torch) thread per step, which the other processes
    of a shared machine do not inflate."""
    from latentzoo import Autoencoder
    from latentzoo.neural.likelihoods import make_likelihood

    ae = Autoencoder(q, hidden=(512, 256), likelihood="bernoulli", contractive=contractive, device="cpu",
                     random_state=0, verbose=0, **kw)
    module = ae._build_module(X.shape[1], make_likelihood(ae.likelihood))
    if opaque:
        module.encoder = Opaque(module.encoder)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    xb = torch.from_numpy(X[:batch_size])

    def run(k):
        times = []
        for _ in range(k):
            t = time.thread_time()
            out = module(xb)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            times.append(time.thread_time() - t)
        return times
    run(2)  # warm-up
    return run


CONTRACTIVE_CASES = {
    "exact": {"contractive": 0.1},
    "exact torch.func": {"contractive": 0.1, "opaque": True},
    "hutchinson m=1": {"contractive": 0.1, "contractive_estimator": "hutchinson", "contractive_projections": 1},
    "hutchinson m=4": {"contractive": 0.1, "contractive_estimator": "hutchinson", "contractive_projections": 4},
}


def contractive_costs(X, q, steps, blocks=4):
    """Median seconds per step: plain AE and each contractive case, alternating blocks of steps."""
    timers = {"plain": step_timer(X, q, 0.0), **{k: step_timer(X, q, **kw) for k, kw in CONTRACTIVE_CASES.items()}}
    times = {k: [] for k in timers}
    for _ in range(blocks):
        for k, run in timers.items():
            times[k] += run(max(1, steps // blocks))
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--steps", type=int, default=24, help="steps per contractive step-cost measurement")
    ap.add_argument("--skip-throughput", action="store_true", help="only the contractive table")
    ap.add_argument("--skip-contractive", action="store_true", help="only the throughput table")
    ap.add_argument("--data", help=".npy file of MNIST-like rows in [0, 1] (default: random)")
    ap.add_argument("--out", default="benchmarks/results/autoencoder.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.data:
        X = np.load(args.data).astype(np.float32).reshape(-1, 784)[: args.rows]
    else:
        X = np.random.default_rng(0).random((args.rows, 784), dtype=np.float32)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {X.shape}, "
          f"{args.rounds} rounds x {args.epochs} epochs (medians)")
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "rows": len(X), "throughput": [],
               "contractive": []}
    print(f"{'batch':>6} {'minimal (samples/s)':>20} {'latentzoo (samples/s)':>22} {'ratio':>6} {'CPU-time ratio':>15}")
    for bs in (() if args.skip_throughput else (128, 512)):
        ref, lz, cpu = throughput(X, bs, args.epochs, args.rounds)
        results["throughput"].append({"batch_size": bs, "minimal": ref, "latentzoo": lz, "ratio": lz / ref,
                                      "ratio_cpu_time": cpu})
        print(f"{bs:>6} {ref:>20.0f} {lz:>22.0f} {lz / ref:>6.3f} {cpu:>15.3f}")
    names = list(CONTRACTIVE_CASES)
    if not args.skip_contractive:
        print(f"\n{'q':>4} {'AE step (ms)':>13}" + "".join(f" {k + ' /AE':>18}" for k in names)
              + f" {'exact flops /AE':>16}")
    for q in () if args.skip_contractive else (2, 4, 8, 16, 32):
        med = contractive_costs(X, q, args.steps)
        p = med["plain"]
        floor = contractive_flop_ratio([784, 512, 256, q], 128)  # multiply-adds, same step
        row = {"q": q, "ae_step_s": p, **{f"{k}_step_s": med[k] for k in names},
               **{f"{k}_ratio": med[k] / p for k in names}, "exact_flop_ratio": floor}
        results["contractive"].append(row)
        print(f"{q:>4} {p * 1e3:>13.2f}" + "".join(f" {med[k] / p:>18.2f}" for k in names) + f" {floor:>16.2f}")
    at = {r["q"]: r for r in results["contractive"]}
    checks = [] if args.skip_contractive else [
        ("exact, q <= 8", max(at[q]["exact_ratio"] for q in (2, 4, 8)), 2.0,
         max(at[q]["exact_flop_ratio"] for q in (2, 4, 8))),
        ("hutchinson m=1, q = 32", at[32]["hutchinson m=1_ratio"], 2.0, None)]
    results["targets"] = [{"case": c, "ratio": v, "target": f"<= {t}", "met": v <= t, "flop_ratio": f}
                          for c, v, t, f in checks]
    for c, v, t, f in checks:
        floor = "" if f is None else f"  (multiply-add ratio {f:.2f}x: the arithmetic alone)"
        print(f"{c:<26} {v:>6.2f}x  target <= {t}  {'OK' if v <= t else 'MISSED'}{floor}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
