"""The comparison report: run the ladder (:mod:`.compare`), draw (:mod:`.figures`),
render one self-contained HTML page (:mod:`.html`) and write it atomically (:mod:`.output`)."""
from .compare import Comparison, ModelResult, choose_likelihood, evaluate_fitted, run_comparison
from .output import write_report, write_single_html

__all__ = ["Comparison", "ModelResult", "choose_likelihood", "evaluate_fitted", "run_comparison",
           "write_report", "write_single_html"]
