"""The one table of training settings is the source of EngineConfig, the constraints and the docs."""
import dataclasses
import inspect

import numpy as np
import pytest

from latentzoo import VAE, Autoencoder
from latentzoo.neural.base import NeuralEstimator
from latentzoo.neural.engine import EngineConfig
from latentzoo.neural.settings import ENGINE_CONSTRAINTS, TRAINING_SETTINGS

ESTIMATORS = [Autoencoder, VAE]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_every_init_default_is_the_table_default(cls):
    params = inspect.signature(cls.__init__).parameters
    for s in TRAINING_SETTINGS:
        assert s.name in params, f"{cls.__name__}.__init__ lacks the training setting {s.name}"
        assert params[s.name].kind is inspect.Parameter.KEYWORD_ONLY
        default = params[s.name].default
        assert type(default) is type(s.default) and default == s.default, (cls.__name__, s.name, default)


def test_engine_config_holds_what_the_loop_reads_with_the_table_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(EngineConfig)}
    engine = {s.name: s.default for s in TRAINING_SETTINGS if s.engine}
    assert {k: fields[k] for k in engine} == engine
    # batch_size, validation_fraction, device, random_state are the estimator's (batches, split,
    # device, seed), not the loop's: the loop's config does not carry unread copies of them
    assert set(fields) - set(engine) == {"desc", "fingerprint"}
    assert "batch_size" not in fields


@pytest.mark.parametrize("cls", [*ESTIMATORS, NeuralEstimator])
def test_docstrings_document_every_setting_with_its_default(cls):
    doc = cls.__doc__
    assert "%(training_settings)s" not in doc
    for s in TRAINING_SETTINGS:
        default = f'"{s.default}"' if isinstance(s.default, str) else repr(s.default)
        assert f"    {s.name} : {s.type}, default={default}\n" in doc, (cls.__name__, s.name)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_the_table_constraints_validate_the_estimators(cls):
    for name, allowed in ENGINE_CONSTRAINTS.items():
        assert cls._parameter_constraints[name] == allowed
    X = np.random.default_rng(0).random((20, 3))
    with pytest.raises(ValueError, match="invalid value for parameter 'checkpoint_every'"):
        cls(checkpoint_every=0, verbose=0).fit(X)
