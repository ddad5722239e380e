"""Benchmark: exact PCA/PPCA fit (q=50) on a 70000 x 784 float32 matrix (MNIST train+test).

Times, alternating run by run in one process: the bare ``X.T @ X`` (float32, the floor
of any covariance route), scikit-learn ``PCA(50, svd_solver="covariance_eigh")`` and
``svd_solver="full"`` (slow: ``--full-repeats`` runs only), latentzoo ``PCA`` and ``PPCA``.
Then, alternating likewise, the log-likelihood of the same data: latentzoo ``PPCA.score``
(float32 in) against scikit-learn ``PCA(50, svd_solver="covariance_eigh").score`` (the
PPCA log-likelihood too, from its d x d precision). Prints medians and ratios and checks:

* PPCA mean log-likelihood vs a float64 reference (centred float64 covariance, full
  ``eigvalsh``, closed-form ML log-likelihood), target relative difference <= 1e-6;
* PPCA fit time / ``X^T X`` time, target <= 1.3;
* speed-up vs scikit-learn ``svd_solver="full"``, target >= 10;
* PPCA ``score`` time / scikit-learn ``PCA.score`` time, target <= 1.0.

Usage::

    python benchmarks/bench_linear.py [--data /path/to/mnist] [--repeats 5] [--threads N]
                                      [--out benchmarks/results/linear.json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

Q = 50
SHAPE = (70000, 784)


def _read_idx_images(path: Path) -> np.ndarray:
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
        raw = fh.read()
    n, r, c = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return (np.frombuffer(raw, np.uint8, offset=16).reshape(n, r * c).astype(np.float32) / np.float32(255))


def load_data(path: str | None) -> tuple[np.ndarray, str]:
    if path is None:
        return np.random.default_rng(0).random(SHAPE, dtype=np.float32), "random uniform"
    p = Path(path)
    try:
        from latentzoo import load_dataset

        if p.is_dir():
            X = np.vstack([load_dataset(p, split=s).X for s in ("train", "test")])
        else:
            X = load_dataset(p).X
        return np.ascontiguousarray(X, dtype=np.float32), f"{p} (latentzoo.load_dataset)"
    except ImportError:
        files = sorted(p.glob("*images-idx3-ubyte*")) if p.is_dir() else [p]
        return np.vstack([_read_idx_images(f) for f in files]), f"{p} (IDX read directly)"


def reference_loglik(X: np.ndarray, q: int) -> float:
    """Mean ML log-likelihood of PPCA in float64 from a centred covariance and all eigenvalues.

    At the ML solution tr(C^-1 S) = d, so L = -1/2 (d log 2pi + sum_k log lambda_k
    + (d - q) log sigma2 + d) with sigma2 the mean of the discarded 1/N eigenvalues.
    """
    X64 = X.astype(np.float64)
    X64 -= X64.mean(axis=0)
    S = X64.T @ X64 / X.shape[0]
    del X64
    lam = np.linalg.eigvalsh(S)[::-1]
    d = S.shape[0]
    s2 = lam[q:].mean()
    return float(-0.5 * (d * np.log(2 * np.pi) + np.log(lam[:q]).sum() + (d - q) * np.log(s2) + d))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="MNIST folder or IDX file (default: random data)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full-repeats", type=int, default=1, help="runs of sklearn svd_solver='full'")
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: library default)")
    ap.add_argument("--out", default="benchmarks/results/linear.json")
    args = ap.parse_args(argv)

    from scipy.linalg import subspace_angles
    from sklearn.decomposition import PCA as SkPCA
    from threadpoolctl import threadpool_info, threadpool_limits

    from latentzoo import PCA, PPCA

    limits = threadpool_limits(args.threads) if args.threads else None
    blas = [f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info()]
    X, source = load_data(args.data)
    print(f"data: {source}, X {X.shape} {X.dtype}; BLAS threads: {', '.join(blas)}; cpus: {os.cpu_count()}")

    cases = {
        "X^T X (float32)": lambda: X.T @ X,
        "sklearn covariance_eigh": lambda: SkPCA(Q, svd_solver="covariance_eigh").fit(X),
        "latentzoo PCA": lambda: PCA(Q).fit(X),
        "latentzoo PPCA": lambda: PPCA(Q).fit(X),
        "sklearn full": lambda: SkPCA(Q, svd_solver="full").fit(X),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    fitted = {}
    for r in range(args.repeats):
        for name, fn in cases.items():  # alternate: every case once per repeat
            if name == "sklearn full" and r >= args.full_repeats:
                continue
            t0 = time.perf_counter()
            fitted[name] = fn()
            times[name].append(time.perf_counter() - t0)

    ppca, sk = fitted["latentzoo PPCA"], fitted["sklearn covariance_eigh"]
    score_cases = {"sklearn PCA.score": lambda: sk.score(X), "latentzoo PPCA.score": lambda: ppca.score(X)}
    for r in range(args.repeats):
        for name, fn in score_cases.items():
            t0 = time.perf_counter()
            fn()
            times.setdefault(name, []).append(time.perf_counter() - t0)

    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["X^T X (float32)"]
    print(f"\n{'case':<26}{'median s':>10}{'x X^T X':>10}{'runs':>6}")
    for k, v in med.items():
        print(f"{k:<26}{v:>10.3f}{v / base:>10.2f}{len(times[k]):>6}")

    ll = ppca.score(X)
    ll_ref = reference_loglik(X, Q)
    rel = abs(ll - ll_ref) / abs(ll_ref)
    angle = float(np.max(subspace_angles(fitted["latentzoo PCA"].components_.T, fitted["sklearn full"].components_.T)))
    ev_rel = float(np.max(np.abs(fitted["latentzoo PCA"].explained_variance_ / fitted["sklearn full"].explained_variance_ - 1)))
    checks = {
        "ppca_loglik": ll, "ppca_loglik_float64_ref": ll_ref, "ppca_loglik_rel_diff": rel,
        "ppca_over_xtx": med["latentzoo PPCA"] / base,
        "pca_over_xtx": med["latentzoo PCA"] / base,
        "speedup_pca_vs_sklearn_full": med["sklearn full"] / med["latentzoo PCA"],
        "speedup_ppca_vs_sklearn_full": med["sklearn full"] / med["latentzoo PPCA"],
        "speedup_pca_vs_sklearn_covariance_eigh": med["sklearn covariance_eigh"] / med["latentzoo PCA"],
        "max_principal_angle_vs_sklearn_full": angle,
        "max_rel_diff_explained_variance_vs_sklearn_full": ev_rel,
        "ppca_score_over_sklearn_score": med["latentzoo PPCA.score"] / med["sklearn PCA.score"],
    }
    targets = [("ppca_loglik_rel_diff", "<=", 1e-6), ("ppca_over_xtx", "<=", 1.3),
               ("speedup_ppca_vs_sklearn_full", ">=", 10.0), ("ppca_score_over_sklearn_score", "<=", 1.0)]
    print()
    print(f"PPCA log-likelihood {ll:.8f} vs float64 reference {ll_ref:.8f}: rel diff {rel:.2e}")
    print(f"PCA subspace vs sklearn full: max principal angle {angle:.2e} rad; explained variance rel diff {ev_rel:.2e}")
    print(f"speed-up vs sklearn full: PCA {checks['speedup_pca_vs_sklearn_full']:.1f}x, "
          f"PPCA {checks['speedup_ppca_vs_sklearn_full']:.1f}x; vs sklearn covariance_eigh: "
          f"PCA {checks['speedup_pca_vs_sklearn_covariance_eigh']:.2f}x")
    for k, op, tgt in targets:
        v = checks[k]
        ok = v <= tgt if op == "<=" else v >= tgt
        print(f"{k:<32}{v:>12.4g}  target {op} {tgt:g}  {'OK' if ok else 'MISSED'}")
    result = {
        "data": source, "shape": list(X.shape), "dtype": str(X.dtype), "n_components": Q,
        "blas_threads": blas, "cpus": os.cpu_count(), "platform": platform.platform(),
        "repeats": args.repeats, "times_s": times, "median_s": med, "checks": checks,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    if limits is not None:
        limits.restore_original_limits()
    return result


if __name__ == "__main__":
    main()
