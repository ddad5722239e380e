"""VAE training throughput on a GPU: latentzoo's engine against a minimal hand-written loop.

Usage::

    python benchmarks/bench_gpu.py [--data MNIST_DIR] [--device cuda] [--epochs 6] [--batch 128 512]
        [--precision 32 bf16] [--out benchmarks/results/gpu.json]

Both train the same VAE, the IWAE paper's 784-200-200-50 tanh MLP (Gaussian encoder,
Bernoulli decoder, Adam 1e-3, batch 100 by default) on 60000 MNIST-sized rows held on the
device (real MNIST when ``--data`` names the IDX folder, else random [0, 1] data of that
shape). The reference is the plain-PyTorch loop of ``benchmarks/plain_vae.py``
(BCE-with-logits, closed-form KL, no ``torch.distributions``, nothing of latentzoo). Runs alternate
(latentzoo fit, minimal loop, latentzoo fit, ...); latentzoo's epoch times come from its
``history_["epoch_time"]`` (training steps, no set-up), the table gives medians of the
per-epoch times after each run's first (warm-up) epoch, samples/s, and the ratio
(minimal time / latentzoo time). Targets: ratio >= 1.0 (issue 16) and a 60k-image epoch
under 1 s on the GPU (issue 6).
Runs on CPU too (``--device cpu --n 10000``), which is how it is checked without a GPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # plain_vae beside this script
import plain_vae  # noqa: E402


def load(args) -> np.ndarray:
    if args.data:
        from latentzoo import load_dataset

        X = load_dataset(args.data, split="train").X
        return X[: args.n]
    return np.random.default_rng(0).random((args.n, 784), dtype=np.float32)


def minimal_epoch(model, opt, X, batch, gen, precision) -> float:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    t = time.perf_counter()
    perm = torch.randperm(len(X), generator=gen).to(X.device)
    for i in range(0, len(X), batch):
        with torch.autocast(X.device.type, dtype=dtype, enabled=dtype is not None):
            loss = model.elbo_loss(X[perm[i : i + batch]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if X.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per run (the first is warm-up)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of each")
    ap.add_argument("--batch", type=int, nargs="+", default=[100, 512])
    ap.add_argument("--precision", nargs="+", default=["32"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from latentzoo import VAE

    X = load(args)
    dev = torch.device(args.device)
    Xd = torch.from_numpy(X).to(dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}; device {name}; data {X.shape}")
    rows = []
    for precision in args.precision:
        for batch in args.batch:
            torch.manual_seed(0)
            ref = plain_vae.PlainVAE().to(dev)
            opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(0)
            vae = VAE(n_components=50, hidden=(200, 200), activation="tanh", likelihood="bernoulli", batch_size=batch,
                      max_epochs=args.epochs, validation_fraction=0.0, patience=None, device=args.device,
                      precision=precision, random_state=0, verbose=0)
            t_lz, t_ref = [], []
            for _ in range(args.rounds):  # alternate whole runs; epoch times from the engine's history
                t_lz += vae.fit(X).history_["epoch_time"][1:]  # first epoch: warm-up
                ref_times = [minimal_epoch(ref, opt, Xd, batch, gen, precision) for _ in range(args.epochs)]
                t_ref += ref_times[1:]
            lz, mn = statistics.median(t_lz[1:]), statistics.median(t_ref[1:])
            row = {"precision": precision, "batch": batch, "latentzoo_epoch_s": lz, "minimal_epoch_s": mn,
                   "latentzoo_samples_s": len(X) / lz, "minimal_samples_s": len(X) / mn, "ratio": mn / lz}
            rows.append(row)
            print(f"precision {precision:>4} batch {batch:4d}: latentzoo {row['latentzoo_samples_s']:9.0f} samples/s "
                  f"({lz:.3f} s/epoch), minimal {row['minimal_samples_s']:9.0f} samples/s ({mn:.3f} s/epoch), "
                  f"ratio {row['ratio']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": name, "torch": torch.__version__, "n": len(X), "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
