"""Render figures to bytes (for the HTML report and the CLI)."""
from __future__ import annotations

import io

__all__ = ["figure_to_png_bytes"]


def figure_to_png_bytes(fig, dpi: int = 110, *, close: bool = False) -> bytes:
    """PNG bytes of ``fig`` (tight bounding box); ``close=True`` also closes it in pyplot.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, default=110
    close : bool, default=False
        Release the figure from pyplot's registry afterwards (reports making many figures).
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()
