r"""The learned-variance Gaussian decoder's summed log-density against torch's ``Normal.log_prob``.

Usage::

    python benchmarks/bench_learned_variance.py /work/shared/data/mnist [--threads 1] [--repeats 5]
        [--out benchmarks/results/learned_variance.json]

The VAE of ``latentzoo compare`` on images (``gaussian-learned``: N(f(z), f~(z)^2 I)) scores
``log p(x|z)`` once per training row and once per importance sample. ``LearnedScaleNormal.
log_prob_sum`` computes ``-sum ((x - mu) / sigma)^2 / 2 - sum log sigma - D log sqrt(2 pi)``
(in place when no graph is recorded); the reference is plain PyTorch,
``torch.distributions.Normal(mu, sigma).log_prob(x).sum(-1)``. Timed, alternating run by
run, medians of ``--repeats``:

* the operation alone: forward and backward for a training batch (128 x 784), no graph for
  importance sampling (8 draws x 256 rows x 784);
* in a VAE (784-256-128-2, MNIST rows dequantised, 10000 of them): one epoch of ``fit`` and
  ``score_samples`` of 300 rows with k = 500 in the process that fitted it (as compare's
  workers do), the decoder returning either distribution (the same network and data; only
  the ``px`` object differs);
* ``score_samples`` of a saved VAE in a fresh process (``latentzoo report`` / ``evaluate`` of a
  stored model), one subprocess per timing. A process that has trained holds a grown heap,
  so the reference's full-size temporaries cost it less there than in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import distributions as D
import torch.nn.functional as F

from latentzoo import make_model
from latentzoo.data import load_dataset
from latentzoo.neural import likelihoods as L


def _torch_normal(self, out):  # the reference: the same decoder output as a plain torch Normal
    loc, raw = out.chunk(2, dim=-1)
    return D.Normal(loc, self.min_scale + F.softplus(raw), validate_args=False)


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def op_times(repeats: int) -> dict:
    g = torch.Generator().manual_seed(0)
    res = {}
    for case, shape, grad in (("train 128x784 fwd+bwd", (128, 784), True),
                              ("importance 8x256x784 no grad", (8, 256, 784), False)):
        raw = torch.randn(*shape[:-1], 2 * shape[-1], generator=g, requires_grad=grad)
        x = torch.rand(shape[-2:], generator=g)
        lik = L.GaussianLearned()

        def ours():
            with torch.set_grad_enabled(grad):
                v = lik(raw).log_prob_sum(x).sum()
                if grad:
                    v.backward()

        def ref():
            with torch.set_grad_enabled(grad):
                v = _torch_normal(lik, raw).log_prob(x).sum(-1).sum()
                if grad:
                    v.backward()

        t = {"latentzoo": [], "torch": []}
        for _ in range(repeats):  # alternating, 20 calls a sample
            t["torch"].append(sum(_timed(ref, 20)))
            t["latentzoo"].append(sum(_timed(ours, 20)))
        res[case] = {k: statistics.median(v) / 20 for k, v in t.items()}
    return res


def vae_times(data_dir: str, repeats: int) -> dict:
    X, _, _ = load_dataset(data_dir, n_samples=10000)
    rng = np.random.default_rng(0)
    X = (np.asarray(X, dtype=np.float32) + rng.random(X.shape, dtype=np.float32) / 256).astype(np.float32)
    X_score = X[:300]
    new = L.GaussianLearned.__call__
    t = {"fit_epoch": {"latentzoo": [], "torch": []}, "score": {"latentzoo": [], "torch": []}}
    ll = {}
    for _ in range(repeats):
        for who, call in (("torch", _torch_normal), ("latentzoo", new)):
            L.GaussianLearned.__call__ = call
            try:
                m = make_model("vae", n_components=2, likelihood="gaussian-learned", hidden=(256, 128),
                               max_epochs=2, patience=None, random_state=0, verbose=0)
                m.fit(X)
                t["fit_epoch"][who].append(float(np.median(m.history_["epoch_time"])))
                s = time.perf_counter()
                ll[who] = float(np.mean(m.score_samples(X_score, n_importance=500)))
                t["score"][who].append(time.perf_counter() - s)
            finally:
                L.GaussianLearned.__call__ = new
    out = {k: {w: statistics.median(v) for w, v in d.items()} for k, d in t.items()}
    out["mean_log_likelihood"] = ll
    return out


def _score_saved(path: str, who: str, threads: int) -> float:
    """Seconds of score_samples(300 rows, k = 500) of the saved VAE at ``path`` in this process."""
    from latentzoo import persistence

    torch.set_num_threads(threads)
    if who == "torch":
        L.GaussianLearned.__call__ = _torch_normal
    X, _, _ = load_dataset(_DATA[0], n_samples=300)
    X = np.asarray(X, dtype=np.float32) + np.random.default_rng(1).random(X.shape, dtype=np.float32) / 256
    m = persistence.load(path)
    s = time.perf_counter()
    m.score_samples(X, n_importance=500)
    return time.perf_counter() - s


_DATA: list[str] = []


def fresh_process_times(data_dir: str, repeats: int, threads: int) -> dict:
    import subprocess
    import sys
    import tempfile

    X, _, _ = load_dataset(data_dir, n_samples=3000)
    X = np.asarray(X, dtype=np.float32) + np.random.default_rng(0).random(X.shape, dtype=np.float32) / 256
    m = make_model("vae", n_components=2, likelihood="gaussian-learned", hidden=(256, 128), max_epochs=2,
                   random_state=0, verbose=0).fit(X)
    t = {"torch": [], "latentzoo": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "vae.safetensors")
        m.save(path)
        for _ in range(repeats):
            for who in ("torch", "latentzoo"):
                out = subprocess.run([sys.executable, __file__, data_dir, "--score-saved", path, "--which", who,
                                      "--threads", str(threads)], capture_output=True, text=True, check=True)
                t[who].append(float(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(v) for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="MNIST folder (IDX files), e.g. ../shared/data/mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/learned_variance.json")
    ap.add_argument("--score-saved", default=None, help=argparse.SUPPRESS)  # the fresh-process timing
    ap.add_argument("--which", default="latentzoo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    _DATA[:] = [args.data]
    if args.score_saved:
        print(_score_saved(args.score_saved, args.which, args.threads))
        return
    torch.set_num_threads(args.threads)
    ops = op_times(args.repeats)
    vae = vae_times(args.data, max(1, args.repeats // 2 + 1))
    fresh = fresh_process_times(args.data, args.repeats, args.threads)
    print(f"torch threads: {args.threads}; medians, alternating runs; ratio = latentzoo / torch (lower is faster)")
    print(f"{'what':>34} | {'torch':>10} | {'latentzoo':>10} | ratio")
    rows = [(k, v["torch"], v["latentzoo"]) for k, v in ops.items()]
    rows += [("VAE fit, one epoch of 9000 rows", vae["fit_epoch"]["torch"], vae["fit_epoch"]["latentzoo"]),
             ("VAE score_samples 300 rows, k=500", vae["score"]["torch"], vae["score"]["latentzoo"]),
             ("the same, saved VAE, fresh process", fresh["torch"], fresh["latentzoo"])]
    for name, ref, ours in rows:
        print(f"{name:>34} | {ref * 1e3:8.2f}ms | {ours * 1e3:8.2f}ms | {ours / ref:.3f}")
    print("mean log-likelihood of the scored rows (the same models, different rounding):",
          {k: round(v, 3) for k, v in vae["mean_log_likelihood"].items()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"threads": args.threads, "ops": ops, "vae": vae, "fresh_process": fresh,
                                          "ratios": {n: o / r for n, r, o in rows}}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
