"""The experiment layer, between the models and the report: run the plan on a dataset.

:mod:`.plan` makes the splits and the (model, latent dimension, repeat) runs,
:mod:`.runner` fits and measures one run, :mod:`.store` keeps finished runs on disk
(resumable, fingerprinted), :mod:`.backends` runs them (this process, N processes, a Dask
cluster), :mod:`.stats` summarises them over repeats and tests the differences, and
:mod:`.sweep` (:func:`run_experiment`) puts it together. :mod:`.ladder` holds the
:class:`Comparison` the report draws, :func:`run_comparison` (one q, one repeat) and
:func:`evaluate_fitted` for models already fitted. The report (:mod:`latentzoo.report`)
only draws and writes what this layer returns.
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
from .runner import RunRecord, execute
from .store import REPORT_FILES, check_destination
from .sweep import figure_latent_dim, run_experiment

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_HIDDEN", "DEFAULT_MODELS", "DEFAULT_N_IMPORTANCE", "COLUMNS",
           "Comparison", "ModelResult", "REPORT_FILES", "RunRecord", "check_destination", "choose_likelihood",
           "evaluate_fitted", "execute", "figure_latent_dim", "model_overrides", "run_comparison",
           "run_experiment", "versions"]
