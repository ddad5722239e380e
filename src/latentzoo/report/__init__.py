"""The comparison report: draw (:mod:`.figures`), render one self-contained HTML page
(:mod:`.html`) and write it atomically (:mod:`.output`) from what the experiment layer
(:mod:`latentzoo.experiment`) measured. The report runs no model."""
from .output import write_report, write_single_html

__all__ = ["write_report", "write_single_html"]
