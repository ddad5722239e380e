"""Summaries over repeats, pairwise significance on shared splits, and the report's verdict.

Every (model, q) gets the mean and the sample standard deviation (``ddof=1``) of each
metric over its runs. For each q and each metric with a direction, the model with the
best mean is compared with the runner-up by a **paired t-test at 5%** over the repeats
they share (same split, same seed): "best" only when the difference is significant,
otherwise "tied" (with every model the winner cannot be told apart from). One run per
model gives "single run": no uncertainty, no claim.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

__all__ = ["DIRECTIONS", "METRIC_LABELS", "TEST", "ALPHA", "summarize", "compare", "verdict", "paired_test"]

#: metric -> "min" (lower is better) or "max"; metrics without a direction are not ranked
DIRECTIONS = {"reconstruction_error": "min", "log_likelihood": "max", "elbo": "max", "knn_accuracy": "max",
              "trustworthiness": "max", "sample_realism": "min", "interpolation_smoothness": "min"}
#: metric -> how the report names it
METRIC_LABELS = {"reconstruction_error": "Reconstruction error", "log_likelihood": "Log-likelihood",
                 "elbo": "ELBO", "knn_accuracy": "kNN accuracy", "trustworthiness": "Trustworthiness",
                 "sample_realism": "Sample realism", "interpolation_smoothness": "Interpolation smoothness"}
ALPHA = 0.05
TEST = "paired t-test, 5%"
_SKIP = {"n_test"}


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None and math.isfinite(v)


def _groups(runs) -> dict:
    g = defaultdict(list)
    for r in runs:
        g[(r.model, r.latent_dim)].append(r)
    return g


def summarize(runs, order=None) -> list[dict]:
    """One row per (model, latent_dim): the mean of every metric, its ``std``, the flags' union."""
    groups = _groups(runs)
    keys = sorted(groups, key=lambda k: (k[1], (order or []).index(k[0]) if order and k[0] in order else 0))
    rows = []
    for model, q in keys:
        rs = sorted(groups[(model, q)], key=lambda r: r.repeat)
        row = {"model": model, "latent_dim": q, "n_runs": len(rs)}
        std = {}
        metric_keys = [k for k in rs[0].metrics if k not in _SKIP]
        for k in metric_keys:
            vals = [r.metrics.get(k) for r in rs]
            if all(_numeric(v) for v in vals):
                row[k] = float(np.mean(vals))
                std[k] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            elif k == "flags":
                row[k] = sorted({f for r in rs for f in (r.metrics.get(k) or [])})
            else:
                row[k] = vals[0] if all(v == vals[0] for v in vals) else None
        for k in ("fit_time_s", "epochs"):
            vals = [getattr(r, k) for r in rs]
            if all(_numeric(v) for v in vals):
                row[k] = float(np.mean(vals)) if k == "fit_time_s" else int(round(float(np.mean(vals))))
                std[k] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            else:
                row[k] = None
        row["std"] = std
        row["params"] = rs[0].params
        rows.append(row)
    return rows


def paired_test(a, b) -> float:
    """Two-sided p-value of the paired t-test of ``a - b`` (1.0 when they never differ)."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2:
        return float("nan")
    if np.all(d == d[0]):  # zero spread: equal everywhere (p = 1) or a constant gap (certain)
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def _comparable(metric: str, rows: list[dict]) -> bool:
    """Log-likelihoods are compared only on one measure (the same density on the same data)."""
    if metric != "log_likelihood":
        return True
    measures = {r.get("log_likelihood_measure") for r in rows}
    return len(measures) == 1 and None not in measures


def compare(runs) -> dict:
    """``{str(q): {metric: {winner, runner_up, verdict, test, p_value, tied_with}}}``."""
    out: dict = {}
    by_q = defaultdict(list)
    for r in runs:
        by_q[r.latent_dim].append(r)
    for q, rs in sorted(by_q.items()):
        per_model = defaultdict(dict)
        for r in rs:
            per_model[r.model][r.repeat] = r
        out[str(q)] = {}
        for metric, how in DIRECTIONS.items():
            vals = {m: {rep: r.metrics.get(metric) for rep, r in reps.items()} for m, reps in per_model.items()}
            vals = {m: v for m, v in vals.items() if v and all(_numeric(x) for x in v.values())}
            rows = [{"log_likelihood_measure": reps[min(reps)].metrics.get("log_likelihood_measure")}
                    for m, reps in per_model.items() if m in vals]
            if len(vals) < 2 or not _comparable(metric, rows):
                continue
            sign = 1.0 if how == "max" else -1.0
            ranked = sorted(vals, key=lambda m: -sign * np.mean(list(vals[m].values())))
            win, run_up = ranked[0], ranked[1]

            def p_vs(other):
                shared = sorted(set(vals[win]) & set(vals[other]))
                return paired_test([vals[win][k] for k in shared], [vals[other][k] for k in shared])

            n = min(len(vals[win]), len(vals[run_up]))
            p = p_vs(run_up)
            if n < 2:
                verdict_ = "single run"
            else:
                verdict_ = "best" if p < ALPHA else "tied"
            tied = [m for m in ranked[1:] if n >= 2 and not p_vs(m) < ALPHA]
            out[str(q)][metric] = {"winner": win if verdict_ != "tied" else None, "leader": win,
                                   "runner_up": run_up, "verdict": verdict_, "test": TEST,
                                   "p_value": None if math.isnan(p) else p, "n_pairs": n, "tied_with": tied}
    return out


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


def _pm(row, metric) -> str:
    s = row.get("std", {}).get(metric)
    return _fmt(row.get(metric)) + ("" if s is None else f" ± {s:.2g}")


def _clause(c, find, q, metric) -> str:
    lead, second = find[(c["leader"], q)], find[(c["runner_up"], q)]
    if c["verdict"] == "best":
        return (f"{c['leader']} is best, {_pm(lead, metric)} against {c['runner_up']} {_pm(second, metric)} "
                f"(p={c['p_value']:.2g})")
    if c["verdict"] == "tied":
        others = c["tied_with"]
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return (f"{c['leader']} leads with {_pm(lead, metric)} but is tied with {shown} "
                f"(p={c['p_value']:.2g} against {c['runner_up']} {_pm(second, metric)})")
    if lead[metric] == second[metric]:
        return f"{c['leader']} and {c['runner_up']} score the same, {_fmt(lead[metric])}, in a single run"
    return f"{c['leader']} scores best in a single run ({_fmt(lead[metric])} against {c['runner_up']} " \
           f"{_fmt(second[metric])}; no uncertainty known)"


def _flag_sentences(runs) -> list[str]:
    """One sentence per raised flag (in the order runs are listed), naming its runs grouped by
    model and q: "Flagged not-converged (5 runs): ae q=2 repeats 0, 1, 2; vae q=2 repeats 0, 2."."""
    by_flag: dict[str, dict[tuple, list]] = {}
    for r in runs:
        for flag in r.metrics.get("flags") or []:
            by_flag.setdefault(flag, {}).setdefault((r.model, r.latent_dim), []).append(r.repeat)
    out = []
    for flag, groups in by_flag.items():
        n = sum(len(reps) for reps in groups.values())
        parts = [f"{m} q={q} repeat{'s' if len(reps) > 1 else ''} {', '.join(str(x) for x in sorted(reps))}"
                 for (m, q), reps in groups.items()]
        out.append(f"Flagged {flag} ({n} run{'s' if n > 1 else ''}): {'; '.join(parts)}.")
    return out


def verdict(rows: list[dict], comparisons: dict, runs, *, names: dict | None = None,
            ppca_evidence_q=None) -> list[str]:
    """The report's opening sentences: per metric, the winner or the tie at each q, then the flags."""
    names = names or {}
    find = {(r["model"], r["latent_dim"]): r for r in rows}
    out = []
    multi = len(comparisons) > 1
    for metric in DIRECTIONS:
        per_q = [(int(q), c[metric]) for q, c in comparisons.items() if metric in c]
        if not per_q:
            continue
        label = names.get(metric, metric.replace("_", " "))
        clauses = [(f"at q={q} " if multi else "") + _clause(c, find, q, metric) for q, c in per_q]
        out.append(f"{label}: {'; '.join(clauses)}.")
    tested = [c for per in comparisons.values() for c in per.values() if c["verdict"] != "single run"]
    if tested:
        n = max(c["n_pairs"] for c in tested)
        out.append(f"Best means beyond the noise: a {TEST} of the leader against each model over the "
                   f"{n} splits they share (± is one standard deviation over the runs).")
    else:
        out.append("One run per model: differences cannot be told from noise (use --repeats 3 or more).")
    out.extend(_flag_sentences(runs))
    if ppca_evidence_q is not None:
        out.append(f"PPCA's evidence (Minka 2000) picks q={ppca_evidence_q} latent dimensions for these data.")
    return out
