"""Render a :class:`~latentzoo.experiment.Comparison` as one self-contained HTML page.

Figures are embedded as base64 PNG (``<img src="data:image/png;base64,...">``), the CSS
is inline in ``template.html``; the page needs no other file and no network.
"""
from __future__ import annotations

import base64
import html
import json
from importlib import resources
from string import Template

import numpy as np

from ..evaluation import METRICS
from ..experiment import Comparison
from ..experiment.health import FLAG_DESCRIPTIONS
from .figures import SECTIONS, RenderedFigure
from .imputation import HEADING as IMPUTATION_HEADING, imputation_html

__all__ = ["render_html", "TABLE_COLUMNS", "HEADINGS"]

#: (key, header, best: "min" / "max" / None)
TABLE_COLUMNS = (
    ("reconstruction_error", "Reconstruction error", "min"),
    ("log_likelihood", "Log-likelihood (nats/sample)", "max"),
    ("bits_per_dim", "Bits/dim", "min"),
    ("elbo", "ELBO (nats)", None),
    ("knn_accuracy", "kNN accuracy", "max"),
    ("knn_r2", "kNN R\u00b2 (continuous label)", "max"),
    ("trustworthiness", "Trustworthiness", "max"),
    ("active_units", "Active units", None),
    ("sample_realism", "Sample realism (0.5 ideal)", "min"),
    ("interpolation_smoothness", "Interpolation smoothness", "min"),
    ("fit_time_s", "Fit time (s)", None),
    ("epochs", "Epochs", None),
)

#: every top-level heading the page can have, in order
HEADINGS = ("Metrics", IMPUTATION_HEADING) + tuple(s.heading for s in SECTIONS) + ("Setup",)

_e = html.escape


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "&mdash;"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    v = float(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3e}"
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.1f}"


def _short_method(method: str | None) -> str:
    if not method:
        return ""
    return "exact" if method == "exact" else method.replace("importance-sampled", "IS")


def _cell_class(comp: Comparison, q, model: str, key: str) -> str:
    c = comp.comparisons.get(str(q), {}).get(key)
    if not c:
        return ""
    if c["verdict"] == "best" and c["winner"] == model:
        return ' class="best"'
    if c["verdict"] == "tied" and model in [c["leader"]] + list(c.get("tied_with", [])):
        return ' class="tied"'
    return ""


def _value(row: dict, key: str) -> str:
    text = _fmt(row.get(key))
    sd = (row.get("std") or {}).get(key)
    if sd is not None and row.get(key) is not None:
        text += f' <span class="sd">&plusmn; {_fmt(sd)}</span>'
    return text


def _measure(comp: Comparison) -> str | None:
    """The one measure of the report's log-likelihoods (the policy's, else the rows' if they agree)."""
    policy = comp.setup.get("likelihood_policy") or {}
    if policy.get("measure"):
        return policy["measure"]
    measures = {r.get("log_likelihood_measure") for r in comp.summary} - {None}
    return measures.pop() if len(measures) == 1 else None


def _header(key: str, text: str, measure: str | None) -> str:
    if key == "log_likelihood" and measure:
        return f"<th>{_e(text)}<br><span class='measure'>{_e(measure)}</span></th>"
    return f"<th>{_e(text)}</th>"


def _flag_cell(flags) -> str:
    return " ".join(f"<span class='flag'>{_e(f)}</span>" for f in flags) if flags else ""


def _ll_text(row: dict) -> str:
    method = row.get("log_likelihood_method") or ""
    if row.get("log_likelihood") is not None:
        return f'{_value(row, "log_likelihood")} <span class="small">({_e(_short_method(method))})</span>'
    if method.startswith("n/a"):
        return f'n/a <span class="small">({_e(method[4:].strip())})</span>'
    return _value(row, "log_likelihood")


#: columns shown only when some model has a value (most data have no continuous label)
OPTIONAL_COLUMNS = ("knn_r2",)


def _columns(rows: list[dict]) -> tuple:
    return tuple(c for c in TABLE_COLUMNS
                 if c[0] not in OPTIONAL_COLUMNS or any(r.get(c[0]) is not None for r in rows))


def _q_table(comp: Comparison, rows: list[dict]) -> str:
    measure = _measure(comp)
    columns = _columns(comp.summary)
    head = "".join(_header(k, h, measure) for k, h, _ in columns) + "<th class='flags'>Flags</th>"
    body = []
    for row in rows:
        cells = [f"<td>{_e(row['model'])}</td>"]
        for key, _, _ in columns:
            text = _ll_text(row) if key == "log_likelihood" else _value(row, key)
            cells.append(f"<td{_cell_class(comp, row['latent_dim'], row['model'], key)}>{text}</td>")
        cells.append(f"<td class='flags'>{_flag_cell(row.get('flags'))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr><th>Model</th>{head}</tr>{''.join(body)}</table>"


def _flags_explained(rows: list[dict]) -> str:
    """Every flag the tables show, with what it means and what to try."""
    shown = {f for r in rows for f in (r.get("flags") or [])}
    items = "".join(f"<dt><span class='flag'>{_e(name)}</span></dt><dd>{_e(text)}</dd>"
                    for name, text in FLAG_DESCRIPTIONS.items() if name in shown)
    if not items:
        return "<p class='small'>Health flags: none raised (" + _e(", ".join(FLAG_DESCRIPTIONS)) + " checked).</p>"
    return f"<h3>Health flags</h3><dl class='metrics'>{items}</dl>"


def _metrics_table(comp: Comparison) -> str:
    qs = sorted({r["latent_dim"] for r in comp.summary})
    tables = []
    for q in qs:
        rows = [r for r in comp.summary if r["latent_dim"] == q]
        title = f"<h3>q = {q} latent dimension{'s' if q != 1 else ''}</h3>" if len(qs) > 1 else ""
        tables.append(title + _q_table(comp, rows))
    n_runs = max((r.get("n_runs", 1) for r in comp.summary), default=1)
    test = comp.setup.get("significance", "paired t-test, 5%")
    marking = (f"Values are means &plusmn; standard deviations over {n_runs} runs (one per split). Green: best, "
               f"beyond the noise ({_e(test)} of the leader against every other model on the same splits); "
               f"blue: tied with the leader (the difference is within the noise)."
               if n_runs > 1 else
               "One run per model: no uncertainty is known, so no model is marked best "
               "(run with --repeats 3 or more to test the differences).")
    explain = "".join(f"<dt>{_e(h)}</dt><dd>{_e(METRICS.get(k, ''))}</dd>" for k, h, _ in _columns(comp.summary))
    ref = ""
    if comp.realism_reference is not None:
        from ..realism import MAX_POINTS

        n = min(int(comp.setup.get("n_test", len(comp.X_test))), MAX_POINTS)
        ref = (f"<p class='small'>Reference for sample realism: the same test between the held-out data and "
               f"as many training examples (real against real) reads {_fmt(comp.realism_reference)}. With {n} "
               f"points a side, chance alone moves the accuracy by about &plusmn;{0.5 / np.sqrt(2 * n):.2f} "
               f"(one binomial sd, 0.5 / sqrt(2n)).</p>")
    lik = comp.setup.get("likelihood_reason")
    lik = f"<p class='small'>Likelihood policy: {_e(lik)}.</p>" if lik else ""
    return (''.join(tables) + f"<p class='small'>{marking} IS = importance-sampled with k proposals. "
            f"{_evaluation_set(comp)}</p>{ref}{lik}"
            f"<dl class='metrics'>{explain}</dl>{_flags_explained(comp.summary)}")


def _verdict(comp: Comparison) -> str:
    if not comp.verdict:
        return ""
    return "<div class='verdict'><b>Verdict</b><ul>" + "".join(f"<li>{_e(s)}</li>" for s in comp.verdict) + \
        "</ul></div>"


def _evaluation_set(comp: Comparison) -> str:
    n = comp.setup.get("n_test", len(comp.X_test))
    if comp.X_train is not None:
        src = comp.setup.get("test_source", "split")
        where = "held-out samples" if src == "split" else f"test samples ({src} test set)"
        return f"Metrics on {n} {where} (models fitted on {comp.setup.get('n_train', len(comp.X_train))})."
    return (f"Metrics on the {n} given samples (no training split here: kNN accuracy is cross-validated "
            f"on their codes and the code Gaussian of sample realism is fitted on them).")


def _img(f: RenderedFigure) -> str:
    if f.png is None:
        return (f"<figure><div class='note'>{_e(f.filename)} could not be drawn: {_e(f.error or '')}</div>"
                f"<figcaption>{_e(f.caption)}</figcaption></figure>")
    b64 = base64.b64encode(f.png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{b64}\" alt=\"{_e(f.caption)}\">"
            f"<figcaption>{_e(f.caption)}</figcaption></figure>")


def _sections(comp: Comparison, figures: list[RenderedFigure]) -> list[tuple[str, str, str]]:
    out = []
    for sec in SECTIONS:
        figs = [f for f in figures if f.section == sec.key and f.omitted is None]
        if not figs:
            continue
        text = sec.intro(comp) if callable(sec.intro) else sec.intro
        intro = f"<p>{_e(text)}</p>" if text else ""
        out.append((sec.key, sec.heading, intro + "<div class='figs'>" + "".join(map(_img, figs)) + "</div>"))
    return out


def _left_out(figures: list[RenderedFigure]) -> str:
    """One line per figure that does not apply to these models, saying why."""
    lines = [f.omitted for f in figures if f.omitted is not None]
    if not lines:
        return ""
    return "<div class='note left-out'><b>Left out</b><ul>" + "".join(f"<li>{_e(t)}.</li>" for t in lines) + \
        "</ul></div>"


def _kv_table(pairs) -> str:
    return "<table class='setup'>" + "".join(
        f"<tr><td>{_e(str(k))}</td><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def _params(p: dict) -> str:
    return "<code>" + _e(", ".join(f"{k}={v!r}" for k, v in sorted(p.items()))) + "</code>"


def _setup(comp: Comparison) -> str:
    m, s = comp.meta, comp.setup
    data = [("name", _e(str(m.get("name")))), ("source", _e(str(m.get("source")))),
            ("shape", _e(f"{m.get('n_samples')} samples x {m.get('n_features')} features")),
            ("image shape", _e(str(m.get("image_shape")))), ("value range", _e(str(m.get("value_range")))),
            ("labels", _labels(m))]
    names = m.get("columns")
    if names:
        data.append(("feature names", _e(", ".join(map(str, names[:8])) + (", ..." if len(names) > 8 else ""))))
    split = [(k, _e(str(s[k]))) for k in ("test_source", "n_train", "n_test", "split", "test_size", "seed",
                                          "latent_dims", "latent_dim_choice", "repeats", "cv", "n_runs",
                                          "significance", "epochs", "max_epochs", "max_epochs_by_model",
                                          "lr_schedule", "lr_schedule_by_model", "lr", "hidden",
                                          "likelihood", "likelihood_reason", "n_importance", "device",
                                          "backend", "jobs", "preprocess", "missing_values", "figure_rows")
             if k in s and not (s[k] is None and k in ("lr", "max_epochs_by_model", "lr_schedule_by_model"))]
    split += [(f"left out: {k}", _e(v)) for k, v in s.get("left_out", {}).items()]
    if comp.ppca_evidence_q is not None:
        split.append(("PPCA evidence q (Minka 2000)", str(comp.ppca_evidence_q)))
    vers = [(k, _e(v)) for k, v in s.get("versions", {}).items()]
    models = [(r.name, _params(r.params)) for r in comp.results]
    return ("<h3>Data</h3>" + _kv_table(data) + "<h3>Run</h3>" + _kv_table(split)
            + "<h3>Model parameters (get_params)</h3>" + _kv_table(models)
            + "<h3>Library versions</h3>" + _kv_table(vers))


def _labels(m: dict) -> str:
    if not m.get("has_labels"):
        return "no"
    kind = m.get("label_kind", "classes")
    text = "continuous covariate (colour scale; kNN regression R\u00b2)" if kind == "continuous" else "classes"
    if m.get("n_unlabelled"):
        text += f"; {m['n_unlabelled']} unlabelled rows (grey in the plots, left out of kNN metrics)"
    return _e(text)


def render_html(comp: Comparison, figures: list[RenderedFigure], *, title: str | None = None) -> str:
    """The complete HTML page as a string."""
    names = ", ".join(r.name for r in comp.results)
    title = title or f"latentzoo: {names} on {comp.meta.get('name')}"
    sections = [("metrics", "Metrics", _metrics_table(comp))]
    if comp.imputation:  # data with missing values
        sections.append(("imputation", IMPUTATION_HEADING, imputation_html(comp.imputation)))
    sections += _sections(comp, figures) + [("setup", "Setup", _setup(comp))]
    nav = "<nav>" + "".join(f"<a href='#{k}'>{_e(h)}</a>" for k, h, _ in sections) + "</nav>"
    lead = (f"<p class='lead'>Data <b>{_e(str(comp.meta.get('name')))}</b> "
            f"({comp.meta.get('n_samples')} x {comp.meta.get('n_features')}); models: {_e(names)}.</p>")
    body = [f"<h1>{_e(title)}</h1>", lead, _verdict(comp), nav]
    body += [f"<section id='{k}'><h2>{_e(h)}</h2>{content}</section>" for k, h, content in sections[:-1]]
    body += [_left_out(figures)]
    body += [f"<section id='{k}'><h2>{_e(h)}</h2>{content}</section>" for k, h, content in sections[-1:]]
    template = Template(resources.files("latentzoo.report").joinpath("template.html").read_text("utf-8"))
    return template.substitute(title=_e(title), body="\n".join(body))


def metrics_json(comp: Comparison) -> str:
    """The experiment as JSON, layout 2 (docs/metrics-json.md): summary rows, every run, comparisons."""
    from ..experiment.runner import clean

    runs = []
    for r in comp.runs:
        d = r.to_json()
        d.pop("fingerprint", None)
        d.pop("params", None)
        runs.append(d)
    doc = {"layout": 2, "data": clean(comp.meta), "setup": clean(comp.setup),
           "realism_reference": clean(comp.realism_reference),
           "metric_descriptions": METRICS, "flag_descriptions": FLAG_DESCRIPTIONS,
           "models": [clean(row) for row in comp.summary],
           "runs": clean(runs), "comparisons": clean(comp.comparisons), "verdict": list(comp.verdict),
           "ppca_evidence_q": comp.ppca_evidence_q}
    if comp.imputation is not None:
        doc["imputation"] = clean(comp.imputation)
    return json.dumps(doc, indent=2)
