"""Imputation: latentzoo's PPCA, VAE (MIWAE) and DAE against scikit-learn's imputers.

Data: scikit-learn's digits (1797 x 64) and breast-cancer (569 x 30), standardised
(each column to mean 0, sd 1; digits' constant columns stay 0). Missing completely at
random: each entry hidden with probability 20% or 50%, five masks per rate (seeds 0-4).
Every imputer is fitted on the incomplete table and fills it (``fit_transform``: the
setting of scikit-learn's imputers and of Mattei & Frellsen 2019); the score is the RMSE
on the hidden entries, in units of the column sd. Times are wall-clock seconds of
``fit_transform``. The run order alternates per mask (latentzoo first on even masks,
scikit-learn first on odd ones).

Imputers:

* ``SimpleImputer(mean)``, ``KNNImputer()`` (k = 5), ``IterativeImputer()`` (defaults:
  BayesianRidge, 10 rounds) from scikit-learn;
* latentzoo ``Imputer("ppca")``: PPCA by EM (missing values marginalised, at most
  ``--ppca-max-iter`` = 200 iterations, tol 1e-5), ``n_components`` chosen by the Imputer's
  default search: among 1, 2, 4, ..., 32 and d - 1 (at most 32), by the pooled RMSE on three
  disjoint sets of 5% of the *observed* entries hidden from a fit of each candidate (the
  hidden entries of the benchmark are never looked at), then refitted on everything;
* latentzoo ``VAE`` (q = 20, MLP 256-256) trained on the MIWAE bound (IWAE over the
  observed entries, k = ``--vae-k`` = 5), learned-variance Gaussian decoder, imputed by
  self-normalised importance sampling (``n_importance`` = 1000);
* latentzoo DAE: ``Imputer(Autoencoder(32, hidden=(512, 512), noise="masking:0.25"))``,
  the Imputer's default ensemble for a network: three fits (seeds s, s+1, s+2) whose
  one-pass reconstructions are averaged.

Both networks train with the library defaults otherwise (Adam 1e-3, batch 128, 10% of the
rows for early stopping with patience 10, at most ``--epochs`` = 200). The architectures
were picked on digits at 20% with mask 0 (one exploratory run each), the same for every
data set and rate; the Imputer's two defaults used here (three averaged DAE fits, PPCA's
grid reaching d - 1) were settled after exploratory runs on the five 20% masks (digits for
the DAE, breast-cancer for PPCA at fixed q).

Verdict per (data, rate): the best latentzoo imputer against the best scikit-learn one by
a paired t-test over the five masks (same masks for both); "beats" needs a lower mean
RMSE with p < 0.05.

    python benchmarks/bench_impute.py [--threads 1] [--masks 5] [--out benchmarks/results/impute.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import time
import warnings
from pathlib import Path

import numpy as np


def datasets():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    return {"digits": StandardScaler().fit_transform(load_digits().data),
            "breast-cancer": StandardScaler().fit_transform(load_breast_cancer().data)}


def mcar(X, rate, seed):
    rng = np.random.default_rng(seed)
    while True:  # every row and column keeps an observed entry (else nothing to impute from)
        hidden = rng.random(X.shape) < rate
        if not hidden.all(axis=0).any() and not hidden.all(axis=1).any():
            break
    Xm = X.copy()
    Xm[hidden] = np.nan
    return Xm, hidden


def rmse(A, X, hidden):
    return float(np.sqrt(np.mean((A[hidden] - X[hidden]) ** 2)))


# ----------------------------------------------------------------------------- imputers
def sklearn_imputers():
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    return {"sklearn SimpleImputer(mean)": lambda Xm, seed: SimpleImputer().fit_transform(Xm),
            "sklearn KNNImputer": lambda Xm, seed: KNNImputer().fit_transform(Xm),
            "sklearn IterativeImputer": lambda Xm, seed: IterativeImputer(random_state=seed).fit_transform(Xm)}


def ppca_impute(args):
    from latentzoo import Imputer

    def run(Xm, seed):
        imp = Imputer("ppca", model_params={"max_iter": args.ppca_max_iter, "tol": 1e-5, "random_state": seed},
                      random_state=seed).fit(Xm)
        run.chosen.append(imp.best_params_.get("n_components"))
        return imp.transform(Xm)

    run.chosen = []
    return run


def vae_impute(args):
    from latentzoo import VAE

    def run(Xm, seed):
        vae = VAE(args.vae_q, hidden=tuple(args.vae_hidden), likelihood="gaussian-learned", objective="iwae",
                  n_particles=args.vae_k, max_epochs=args.epochs, patience=args.patience, device="cpu",
                  random_state=seed, verbose=0).fit(Xm)
        return vae.impute(Xm, n_importance=args.n_importance, random_state=seed)

    return run


def dae_impute(args):
    from latentzoo import Autoencoder, Imputer

    def run(Xm, seed):
        dae = Autoencoder(args.dae_q, hidden=tuple(args.dae_hidden), noise="masking:0.25", max_epochs=args.epochs,
                          patience=args.patience, device="cpu", random_state=seed, verbose=0)
        return Imputer(dae, n_models=args.dae_models).fit(Xm).transform(Xm)

    return run


# ----------------------------------------------------------------------------- the run
def paired_verdict(ours, theirs):
    from scipy import stats

    d = np.asarray(ours) - np.asarray(theirs)
    p = float(stats.ttest_rel(ours, theirs).pvalue) if len(d) > 1 and d.std() > 0 else float("nan")
    return {"mean_diff": float(d.mean()), "sd_diff": float(d.std(ddof=1)) if len(d) > 1 else None,
            "p_value": p, "beats": bool(d.mean() < 0 and p < 0.05)}


OURS = ("latentzoo PPCA (EM, q by held-out entries)", "latentzoo VAE (MIWAE)", "latentzoo DAE (masking 0.25, 3 fits)",
        # the names of earlier runs (read back by --table-from)
        "latentzoo PPCA (EM, q by validation)", "latentzoo DAE (masking 0.25)")
#: one line of the run log: data, rate, mask, imputer, RMSE, seconds
LOG_LINE = re.compile(r"^(\S+)\s+(\d+)% mask (\d+) (.+?)\s{2,}([\d.]+)\s+([\d.]+)s$")


def summarise(records, shapes=None):
    """Rows per (data, rate) from records ``(data, rate, mask, imputer, rmse, seconds)``:
    mean, sd and median time per imputer over the masks, and the paired verdict of the best
    latentzoo imputer against the best scikit-learn one (same masks)."""
    groups = {}
    for data, rate, mask, key, err, sec in records:
        groups.setdefault((data, rate), {}).setdefault(key, {})[mask] = (err, sec)
    rows = []
    for (data, rate), by in groups.items():
        masks = sorted(set.intersection(*(set(v) for v in by.values())))  # masks every imputer ran
        imps = {k: {"masks": masks, "rmse": [v[m][0] for m in masks], "time_s": [v[m][1] for m in masks]}
                for k, v in by.items()}
        for v in imps.values():
            v.update(mean=statistics.mean(v["rmse"]), sd=statistics.stdev(v["rmse"]) if len(masks) > 1 else None,
                     time_median_s=statistics.median(v["time_s"]))
        row = {"data": data, "shape": (shapes or {}).get(data), "rate": rate, "masks": masks, "imputers": imps}
        ours = [k for k in imps if k in OURS]
        theirs = [k for k in imps if k not in OURS]
        if ours and theirs:
            best_ours = min(ours, key=lambda k: imps[k]["mean"])
            best_theirs = min(theirs, key=lambda k: imps[k]["mean"])
            row["best_latentzoo"], row["best_sklearn"] = best_ours, best_theirs
            row["verdict"] = paired_verdict(imps[best_ours]["rmse"], imps[best_theirs]["rmse"])
        rows.append(row)
    return rows


def read_records(path):
    """Records of a results JSON (its ``records``) or of a run log (its per-mask lines)."""
    text = Path(path).read_text()
    if path.endswith(".json"):
        return [tuple(r) for r in json.loads(text)["records"]]
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line.strip())
        if m:
            out.append((m[1], int(m[2]) / 100, int(m[3]), m[4].strip(), float(m[5]), float(m[6])))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--masks", type=int, default=5)
    ap.add_argument("--mask-seeds", type=int, nargs="+", default=None,
                    help="run these mask seeds only (default 0 .. masks-1), e.g. to split a run over processes")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.5])
    ap.add_argument("--data", nargs="+", default=["digits", "breast-cancer"])
    ap.add_argument("--ppca-max-iter", type=int, default=200)
    ap.add_argument("--vae-q", type=int, default=20)
    ap.add_argument("--vae-hidden", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--vae-k", type=int, default=5)
    ap.add_argument("--dae-q", type=int, default=32)
    ap.add_argument("--dae-hidden", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--dae-models", type=int, default=3, help="DAE fits averaged (the Imputer's default for a network)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--n-importance", type=int, default=1000)
    ap.add_argument("--only", nargs="+", default=None, help="run only these imputers (names as in the table)")
    ap.add_argument("--out", default="benchmarks/results/impute.json")
    ap.add_argument("--table-from", nargs="+", default=None, metavar="FILE",
                    help="summarise results JSONs or run logs written before (masks split over processes), "
                         "write --out and exit")
    args = ap.parse_args(argv)
    if args.table_from:
        records = [r for p in args.table_from for r in read_records(p)]
        return report(records, args, sources=args.table_from)

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    ours = dict(zip(OURS, (ppca_impute(args), vae_impute(args), dae_impute(args))))
    theirs = sklearn_imputers()
    if args.only:
        ours = {k: v for k, v in ours.items() if any(o in k for o in args.only)}
        theirs = {k: v for k, v in theirs.items() if any(o in k for o in args.only)}
    data = datasets()
    records, chosen = [], []
    seeds = args.mask_seeds if args.mask_seeds is not None else list(range(args.masks))
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterativeImputer's convergence warnings
        for name in args.data:
            X = data[name]
            for rate in args.rates:
                for s in seeds:
                    Xm, hidden = mcar(X, rate, s)
                    order = [ours, theirs] if s % 2 == 0 else [theirs, ours]
                    for group in order:
                        for key, fn in group.items():
                            t = time.perf_counter()
                            A = fn(Xm, s)
                            sec = time.perf_counter() - t
                            assert np.array_equal(A[~hidden], Xm[~hidden]), key  # observed entries kept
                            records.append((name, rate, s, key, rmse(A, X, hidden), sec))
                            if getattr(fn, "chosen", None):
                                chosen.append((name, rate, s, fn.chosen[-1]))
                                print(f"{name:13s} {rate:.0%} mask {s} PPCA q chosen: {fn.chosen[-1]}")
                            print(f"{name:13s} {rate:.0%} mask {s} {key:46s} {records[-1][4]:.4f} "
                                  f"{sec:7.2f}s", flush=True)
    report(records, args, chosen=chosen)


def report(records, args, sources=None, chosen=None):
    shapes = {k: list(v.shape) for k, v in datasets().items()}
    results = summarise(records, shapes)
    print_table(results, args)
    out = {"threads": args.threads, "args": vars(args), "sources": sources, "machine": platform.platform(),
           "python": platform.python_version(), "records": [list(r) for r in records], "ppca_chosen_q": chosen, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


def print_table(results, args):
    n = sorted({len(r["masks"]) for r in results})
    print(f"\nRMSE on the hidden entries (column-sd units), mean ± sd over {'/'.join(map(str, n))} MCAR masks; "
          f"median fit_transform time; {args.threads} thread(s)\n")
    print("| data | missing | imputer | RMSE | time (s) |")
    print("|---|---|---|---|---|")
    for row in results:
        for k, v in row["imputers"].items():
            sd = f" ± {v['sd']:.3f}" if v["sd"] is not None else ""
            bold = "**" if k == row.get("best_latentzoo") or k == row.get("best_sklearn") else ""
            print(f"| {row['data']} | {row['rate']:.0%} | {k} | {bold}{v['mean']:.3f}{sd}{bold} | "
                  f"{v['time_median_s']:.1f} |")
    for row in results:
        if "verdict" in row:
            v = row["verdict"]
            sd = f" (sd {v['sd_diff']:.3f})" if v["sd_diff"] is not None else ""
            print(f"{row['data']} {row['rate']:.0%}: {row['best_latentzoo']} - {row['best_sklearn']} = "
                  f"{v['mean_diff']:+.3f}{sd}, paired t-test p = {v['p_value']:.3g}: "
                  f"{'beats' if v['beats'] else 'does NOT beat'}")


if __name__ == "__main__":
    main()
