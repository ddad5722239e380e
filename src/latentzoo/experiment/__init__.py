"""The experiment layer, between the models and the report: run the ladder on a dataset.

:mod:`.ladder` splits the data, fits every requested registered model and measures it
(:func:`run_comparison`; :func:`evaluate_fitted` for models already fitted). The report
(:mod:`latentzoo.report`) only draws and writes what this layer returns; the CLI's
``compare``, ``fit`` and ``report`` commands call it directly.
"""
from .ladder import (
    DEFAULT_EPOCHS,
    DEFAULT_HIDDEN,
    DEFAULT_MODELS,
    DEFAULT_N_IMPORTANCE,
    COLUMNS,
    Comparison,
    ModelResult,
    choose_likelihood,
    evaluate_fitted,
    model_overrides,
    run_comparison,
    versions,
)

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_HIDDEN", "DEFAULT_MODELS", "DEFAULT_N_IMPORTANCE", "COLUMNS",
           "Comparison", "ModelResult", "choose_likelihood", "evaluate_fitted", "model_overrides",
           "run_comparison", "versions"]
