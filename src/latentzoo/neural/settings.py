"""The training settings of every neural estimator, written once.

One table, :data:`TRAINING_SETTINGS` (name, default, constraints, type, one-line doc), is
the source of

- :data:`ENGINE_CONSTRAINTS`, the parameter validation of the settings;
- :class:`EngineConfig`, what the training loop reads (the settings marked ``engine``);
- the ``Parameters`` entries of the estimators' docstrings (:func:`document_settings`);
- the settings that may change between a checkpoint and its resumption.

The estimators keep scikit-learn's explicit ``__init__`` signatures (``get_params`` and
``clone`` read them); ``tests/test_settings.py`` checks that their defaults are the table's.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field, make_dataclass
from typing import Any

import numpy as np
import torch

from .._validation import Callable_, Instance, Interval, Options
from .missing import MISSING_FILLS
from .schedules import HOLD_FRACTION, LR_SCHEDULES

__all__ = ["Setting", "TRAINING_SETTINGS", "ENGINE_CONSTRAINTS", "EngineConfig", "RESUME_FREE",
           "document_settings"]


def _is_device(v) -> bool:
    if v == "auto" or isinstance(v, torch.device):
        return True
    torch.device(v)
    return True


@dataclass(frozen=True)
class Setting:
    """One training setting: its default, accepted values and documentation."""

    name: str
    default: Any
    constraints: tuple  # of _validation constraints; None in it allows None
    type: str  # numpydoc type
    doc: str  # one line (wrapped in docstrings)
    engine: bool = True  # a field of EngineConfig (read by the training loop)
    resume_free: bool = False  # may differ between a checkpoint and its resumption


TRAINING_SETTINGS: tuple[Setting, ...] = (
    Setting("lr", 1e-3, (Interval("real", 0, None, closed="neither"),), "float", "Adam's learning rate."),
    Setting("lr_schedule", None, (Options(tuple(LR_SCHEDULES)), None),
            '{None, "plateau", "cosine", "constant-cosine"}',
            'Per-epoch learning-rate schedule: "plateau" halves the rate when the monitored loss has not '
            'improved for a third of ``patience`` epochs; "cosine" anneals it to lr/1000 over '
            f'``max_epochs``; "constant-cosine" holds it for {HOLD_FRACTION:.0%} of ``max_epochs`` and anneals it '
            '(cosine) to lr/1000 over the rest. The rates used are in ``history_["lr"]``.'),
    Setting("batch_size", 128, (Interval("int", 1, None),), "int", "Rows per training step.", engine=False),
    Setting("max_epochs", 100, (Interval("int", 1, None),), "int", "Epochs at most.", resume_free=True),
    Setting("validation_fraction", 0.1, (Interval("real", 0, 1, closed="left"),), "float in [0, 1)",
            "Fraction of the rows held out for early stopping (0: the training loss is watched).",
            engine=False),
    Setting("patience", 10, (Interval("int", 1, None), None), "int or None",
            "Epochs without improvement before stopping (the best weights are restored); None: "
            "train ``max_epochs``."),
    Setting("device", "auto", (Callable_(_is_device, "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device"),),
            '"auto", "cpu", "cuda", "cuda:N" or torch.device', '"auto": CUDA when present, else CPU.',
            engine=False, resume_free=True),
    Setting("precision", "32", (Options(("32", "bf16", "fp16")),), '{"32", "bf16", "fp16"}',
            "Autocast precision (fp32 master weights; a gradient scaler for fp16)."),
    Setting("compile", False, (Options((True, False)),), "bool", "Train through ``torch.compile``."),
    Setting("checkpoint_dir", None, (Instance((str,), "a folder path (str)"), None), "str or None",
            "Folder of atomic checkpoints; ``fit(X, resume=True)`` continues from them.", resume_free=True),
    Setting("checkpoint_every", 1, (Interval("int", 1, None),), "int", "Checkpoint every N epochs.",
            resume_free=True),
    Setting("random_state", None, (Interval("int", 0, 2**32 - 1), Instance((np.random.RandomState,)), None),
            "int, RandomState or None", "Seeds the validation split, the shuffling and torch's draws.",
            engine=False),
    Setting("verbose", 1, (Interval("int", 0, None), Options((True, False))), "int",
            "0: no progress bar.", resume_free=True),
    Setting("missing_fill", "mean", (Callable_(lambda v: isinstance(v, str) and v in MISSING_FILLS,
                                               f"one of {', '.join(map(repr, MISSING_FILLS))}"),),
            '{"mean", "zero"}', "Missing values (NaN): what the encoder sees in place of a missing entry, "
            "the training column mean or zero. The likelihood (reconstruction) term covers the observed "
            "entries only; for the VAE this makes the bound the MIWAE bound (Mattei & Frellsen 2019).",
            engine=False),
    Setting("missing_indicator", False, (Options((True, False)),), "bool",
            "Append the mask of observed entries to the encoder input (D more inputs; MLP only).", engine=False),
)

#: parameter constraints of the training settings (merged into each estimator's own)
ENGINE_CONSTRAINTS = {s.name: list(s.constraints) for s in TRAINING_SETTINGS}

#: settings that may change between a checkpoint and its resumption (not in the fingerprint)
RESUME_FREE = tuple(s.name for s in TRAINING_SETTINGS if s.resume_free)

EngineConfig = make_dataclass(
    "EngineConfig",
    [(s.name, Any, field(default=s.default)) for s in TRAINING_SETTINGS if s.engine]
    + [("desc", str, field(default="fit")),  # progress-bar label
       ("fingerprint", str, field(default=""))],  # identifies model + data; a checkpoint must match to resume
)
EngineConfig.__module__ = __name__
EngineConfig.__doc__ = ("What the training loop reads: the training settings marked ``engine`` in "
                        ":data:`TRAINING_SETTINGS` (same names and defaults), a label and a fingerprint.")


def engine_config(estimator, **extra) -> EngineConfig:
    """The :class:`EngineConfig` of an estimator's current settings."""
    return EngineConfig(**{s.name: getattr(estimator, s.name) for s in TRAINING_SETTINGS if s.engine}, **extra)


def _default_words(v) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v)


def settings_doc(indent: int = 4) -> str:
    """The numpydoc ``Parameters`` entries of the training settings."""
    pad = " " * indent
    lines = []
    for s in TRAINING_SETTINGS:
        lines.append(f"{pad}{s.name} : {s.type}, default={_default_words(s.default)}")
        lines.append(textwrap.fill(s.doc, width=92, initial_indent=pad + "    ", subsequent_indent=pad + "    "))
    return "\n".join(lines)


def document_settings(cls):
    """Class decorator: put the training settings where the docstring says ``%(training_settings)s``
    (matplotlib's docstring-interpolation convention)."""
    marker = "%(training_settings)s"
    doc = cls.__doc__ or ""
    if marker not in doc:
        raise ValueError(f"{cls.__name__}'s docstring has no {marker} line")
    line = next(ln for ln in doc.splitlines() if marker in ln)
    cls.__doc__ = doc.replace(line, settings_doc(indent=len(line) - len(line.lstrip())))
    return cls
