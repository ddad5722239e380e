"""The report's imputation section (HTML), drawn from ``Comparison.imputation``."""
from __future__ import annotations

import html

__all__ = ["imputation_html", "HEADING"]

HEADING = "Imputation"

_e = html.escape


def imputation_html(table: dict) -> str:
    """A table of RMSE on the entries hidden from the held-out rows, best value marked."""
    scored = [r["rmse"] for r in table["rows"] if r["rmse"] is not None]
    best = min(scored) if scored else None
    body = []
    for r in table["rows"]:
        if r["rmse"] is None:
            cell = f"&mdash; <span class='small'>({_e(r.get('note', 'n/a'))})</span>"
        else:
            cell = f"{r['rmse']:.4g}"
        mark = " class='best'" if r["rmse"] is not None and r["rmse"] == best else ""
        kind = "reference" if r["kind"] == "reference" else "model"
        t = "&mdash;" if r.get("time_s") is None else f"{r['time_s']:.3g}"
        body.append(f"<tr><td>{_e(r['imputer'])}</td><td>{kind}</td><td{mark}>{cell}</td><td>{t}</td></tr>")
    return (f"<p>Masking rate <b>{table['rate']:.0%}</b>: {_e(table['description'])}. Lower is better; "
            "green marks the lowest (one mask: no uncertainty is estimated).</p>"
            "<table><tr><th>Imputer</th><th>Kind</th><th>RMSE on hidden entries</th><th>Impute time (s)</th></tr>"
            + "".join(body) + "</table>"
            "<p class='small'>PPCA: exact conditional mean E[x_mis | x_obs]; VAE: self-normalised importance "
            "sampling of it (MIWAE); autoencoders: their reconstruction of the filled input; PCA: least "
            "squares on the principal subspace.</p>")
