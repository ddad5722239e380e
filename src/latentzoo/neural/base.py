"""What every neural estimator shares: training settings, ``fit``, devices, persistence.

Subclasses (:class:`~latentzoo.neural.autoencoder.Autoencoder`,
:class:`~latentzoo.neural.vae.VAE`) write their own ``__init__`` (scikit-learn needs the
explicit signature), add their constraints to ``_parameter_constraints`` and implement
``_build_module(n_features, likelihood)``, which returns a ``torch.nn.Module`` whose
``forward(x, **schedules)`` gives an :class:`~latentzoo.neural.engine.LossOutput`; per-epoch
inputs of the training loop (the VAE's KL weight) come from ``_schedules()``.
"""
from __future__ import annotations

import copy
import hashlib
from contextlib import contextmanager
import json
import numbers
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.distributions import constraints

from .._validation import check_finite
from ..base import LatentModel
from .corruption import Corruption
from .engine import ArrayBatches, TensorBatches, resolve_device, train
from .likelihoods import Likelihood, make_likelihood, support_words
from .resources import check_parameter_memory
from .settings import ENGINE_CONSTRAINTS, RESUME_FREE, document_settings, engine_config
from .missing import check_observed_columns, column_fill

__all__ = ["NeuralEstimator", "ENGINE_CONSTRAINTS", "is_sizes", "is_image_shape"]

#: families chosen by a spec string, saved as their ``spec()``
_SPEC_FAMILIES = (Likelihood, Corruption)


def is_sizes(v) -> bool:
    """A tuple or list of positive ints (layer widths; ``bool`` is not an int here)."""
    return isinstance(v, (tuple, list)) and all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in v)


def is_image_shape(v) -> bool:
    """A (height, width) pair of positive ints."""
    return is_sizes(v) and len(v) == 2


#: rows per chunk when validating or evaluating data chunk by chunk
CHUNK_ROWS = 4096
#: fraction of free accelerator memory that device-resident training data may take
DEVICE_DATA_FRACTION = 0.5


@contextmanager
def torch_seeded(seed: int | None, device: torch.device):
    """Run the block with torch's global RNG seeded by ``seed``, restoring the caller's RNG
    state afterwards (``torch.random.fork_rng``); ``seed=None`` leaves the global RNG as is.

    Corruptions and reparametrised samples draw from the global RNG, so this makes a fit or
    a Monte Carlo estimate repeatable without changing anyone else's random stream.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def is_streamed(X) -> bool:
    """True for memory-mapped arrays (``load_dataset(path, mmap=True)``): never loaded whole."""
    return isinstance(X, np.memmap)


def iter_chunks(X, rows: int = CHUNK_ROWS):
    """``(start, float32 chunk)`` over the rows of ``X``; memory bounded by ``rows``."""
    for i in range(0, X.shape[0], rows):
        chunk = np.asarray(X[i : i + rows], dtype=np.float32)
        yield i, chunk if chunk.flags.writeable else chunk.copy()  # torch wants writable memory


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether training data of ``nbytes`` may live on ``device`` (always on CPU)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_FRACTION * free


def _prepare_checkpoint_dir(folder: str) -> None:
    """Create ``checkpoint_dir`` before training, so a bad path fails at once, not after epoch 1."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint_dir={folder!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"checkpoint_dir={folder!r} cannot be created: {e.strerror or e}") from None
    for debris in path.glob(".checkpoint.pt.*.tmp"):  # left by a fit killed while writing
        debris.unlink(missing_ok=True)


@document_settings
class NeuralEstimator(LatentModel):
    """Base of the PyTorch models: one training engine, safe persistence, any device.

    The training settings every neural estimator takes (one table,
    :data:`~latentzoo.neural.settings.TRAINING_SETTINGS`):

    Parameters
    ----------
    %(training_settings)s
    """

    _fitted_attr = "module_"
    #: parameters that may change between a checkpoint and its resumption
    _resume_free_params = RESUME_FREE

    # -------------------------------------------------------------- to be implemented
    def _build_module(self, n_features: int, likelihood: Likelihood) -> torch.nn.Module:
        raise NotImplementedError

    def _schedules(self) -> dict[str, Callable[[int], float]]:
        """Per-epoch keyword inputs of the module's ``forward`` (name -> epoch -> value)."""
        return {}

    def _check_data(self, X: np.ndarray, likelihood: Likelihood | None) -> None:
        """Data must lie in the likelihood's ``support`` (e.g. [0, 1] for the Bernoulli).

        Checked chunk by chunk (memory bounded for memory-mapped ``X``); a real-line
        support accepts any finite data, which are already checked finite. NaN entries
        are missing values, not data: they are not checked.
        """
        if likelihood is None or likelihood.support is constraints.real or not X.size:
            return
        for _, chunk in iter_chunks(X):
            t = torch.from_numpy(chunk)
            if not bool((likelihood.support.check(t) | torch.isnan(t)).all()):
                lo, hi = np.nanmin(X), np.nanmax(X)
                raise ValueError(
                    f"likelihood={likelihood.spec()!r} needs data in {support_words(likelihood.support)}; "
                    f"got min {lo:g}, max {hi:g} — scale the data (e.g. MinMaxScaler) or use likelihood='gaussian'"
                )

    # -------------------------------------------------------------- fit
    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral):
            return int(rs)
        gen = rs if isinstance(rs, np.random.RandomState) else np.random.mtrand._rand
        return int(gen.randint(0, 2**31 - 1))

    def _fingerprint(self, X: np.ndarray, seed: int) -> str:
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in self._resume_free_params}
        probe = np.ascontiguousarray(X[:: max(1, len(X) // 64)], dtype=np.float32)
        blob = json.dumps([type(self).__name__, repr(sorted(params.items())), X.shape, seed])
        return hashlib.sha256(blob.encode() + probe.tobytes()).hexdigest()

    def _split(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        perm = np.random.RandomState(seed).permutation(n)
        n_val = int(np.floor(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            return perm, None
        return perm[n_val:], perm[:n_val]

    def fit(self, X, y=None, *, resume: bool = False):
        """Train on ``X`` (n_samples, n_features); ``y`` is ignored.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        resume : bool, default=False
            Continue from the last checkpoint in ``checkpoint_dir`` after a crash or
            kill; the fit then ends where an uninterrupted one would (same seed, CPU).

        Returns
        -------
        self
        """
        self._validate_params()
        # the likelihood is resolved once here and kept on the module (module_.likelihood)
        likelihood = make_likelihood(self.likelihood)
        streamed = is_streamed(X)
        if streamed:  # memory-mapped: validated chunk by chunk, never loaded whole
            X = self._validate_stream(X, reset=True, likelihood=likelihood)
        else:
            X = self._validate_input(X, reset=True, dtype=np.float32, allow_nan=True)
            check_observed_columns(X, type(self).__name__)
            self._check_data(X, likelihood)
        if resume and not self.checkpoint_dir:
            raise ValueError("fit(resume=True) needs checkpoint_dir to be set")
        if resume and not isinstance(self.random_state, numbers.Integral):
            raise ValueError("fit(resume=True) needs an integer random_state, so the resumed fit replays the same run")
        if self.checkpoint_dir:
            _prepare_checkpoint_dir(self.checkpoint_dir)
        seed = self._seed()
        device = resolve_device(self.device)
        self.check_memory(X.shape[1], likelihood=likelihood, device=device)  # before allocating anything
        cfg = engine_config(self, desc=type(self).__name__, fingerprint=self._fingerprint(X, seed))
        with torch_seeded(seed, device):  # seed torch without touching the caller's RNG
            module = self._build_module(X.shape[1], likelihood)
            if not streamed:  # memory maps hold no NaN (checked): the fill stays 0
                module.inputs.set_fill(column_fill(X, self.missing_fill))
            module = module.to(device)
            tr, va = self._split(len(X), seed)
            train_data, val_data = self._batch_sources(X, tr, va, device, streamed)
            history = train(module, train_data, val_data, cfg, seed=seed, device=device, resume=resume,
                            schedules=self._schedules())
        # assigned only after a successful fit: a diverged fit never leaves NaN weights here
        self.module_ = module
        self.history_ = history
        return self

    def check_memory(self, n_features: int, *, likelihood: Likelihood | None = None, device=None) -> int:
        """Refuse (``ValueError`` with the figures) a network whose training state would not fit
        in the device's available memory, counted on the meta device without allocating it;
        returns the estimated bytes. ``fit`` calls it; a caller planning many fits can call it
        first (:func:`~latentzoo.neural.resources.check_parameter_memory`)."""
        likelihood = make_likelihood(self.likelihood) if likelihood is None else likelihood
        device = resolve_device(self.device) if device is None else device
        return check_parameter_memory(self, lambda: self._build_module(n_features, likelihood), n_features, device)

    def _batch_sources(self, X, tr, va, device, streamed):
        """Training/validation batches: device-resident tensors when the data fit there,
        else rows streamed from host memory or a memory map through a DataLoader."""
        if streamed or not fits_on_device(X.nbytes, device):
            workers = 2 if device.type == "cuda" else 0
            make = lambda rows: ArrayBatches(X, rows, self.batch_size, device, num_workers=workers)  # noqa: E731
        else:
            with warnings.catch_warnings():  # read-only input (e.g. a memmap slice): never written to
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                Xt = torch.from_numpy(X).to(device)
            make = lambda rows: TensorBatches(Xt[torch.from_numpy(rows).to(device)], self.batch_size)  # noqa: E731
        return make(tr), (make(va) if va is not None else None)

    def _validate_stream(self, X, *, reset: bool, likelihood: Likelihood | None = None):
        """Check a memory-mapped array without reading it whole: shape and dtype up front,
        then values chunk by chunk (finite, and in the ``likelihood``'s support)."""
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"expected a 2-D array with at least one row and column, got shape {X.shape}")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise ValueError(f"expected numeric data, got dtype {X.dtype}")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        for i, chunk in iter_chunks(X):
            check_finite(chunk, row_offset=i, counted=False)
            self._check_data(chunk, likelihood)
        return X

    # -------------------------------------------------------------- evaluation helpers
    @property
    def device_(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _batched(self, fn: Callable[[torch.Tensor], Any], X: np.ndarray, batch_size: int = 4096,
                 desc: str | None = None):
        """Apply ``fn`` to float32 row batches of ``X`` on the model's device, no grad.

        Memory stays bounded by the chunk size (the data are never all on the device).
        Returns the numpy concatenation of the outputs (tuples concatenated per entry).
        ``desc`` names a long pass: its progress is shown (``verbose``) when it has 10+ batches.
        """
        from .._progress import progress

        dev = self.device_
        outs = []
        self.module_.eval()
        n_batches = -(-len(X) // batch_size)
        show = int(self.verbose) if desc is not None and n_batches >= 10 else 0
        bar = progress(n_batches, desc or "", verbose=show, unit="batches")
        with torch.no_grad():
            for _, chunk in iter_chunks(X, batch_size):
                outs.append(fn(torch.as_tensor(chunk, device=dev)))
                bar.update(1)
        bar.close()
        if outs and isinstance(outs[0], tuple):
            return tuple(np.concatenate([o[k].cpu().numpy() for o in outs]) for k in range(len(outs[0])))
        return np.concatenate([o.cpu().numpy() for o in outs]) if outs else np.empty((0,))

    def _encoder_inputs(self, n_features: int) -> int:
        """Width of the built encoder's input: D, or 2 D with ``missing_indicator``."""
        if self.missing_indicator and self.architecture != "mlp":
            raise ValueError(f"missing_indicator=True needs architecture='mlp' (the mask is appended "
                             f"as extra inputs), got architecture={self.architecture!r}")
        return n_features * (2 if self.missing_indicator else 1)

    def _impute_rows(self, fn: Callable[[torch.Tensor], torch.Tensor], X, batch_size: int = 4096) -> np.ndarray:
        """``X`` (float64) with the NaN of its incomplete rows replaced by ``fn(batch)``.

        ``fn`` maps a float32 batch with NaN to a full one; rows without NaN are not
        passed, and observed entries are copied from ``X`` exactly (never round-tripped
        through float32).
        """
        self._check_fitted()
        X = self._validate_input(X, reset=False, allow_nan=True, dtype=np.float64)
        out = X.copy()
        miss = np.isnan(X)
        rows = np.flatnonzero(miss.any(axis=1))
        if rows.size:
            filled = self._batched(fn, X[rows], batch_size=batch_size)
            out[rows] = np.where(miss[rows], filled, X[rows])
        return out

    def _input(self, X, **kw) -> np.ndarray:
        self._check_fitted()
        if is_streamed(X):  # stays on disk; _batched reads it chunk by chunk
            return self._validate_stream(X, reset=False)
        return self._validate_input(X, reset=False, dtype=np.float32, **kw)

    def to(self, device):
        """Move the fitted network to ``device`` (e.g. fitted on GPU, used on CPU)."""
        self._check_fitted()
        self.module_.to(resolve_device(device))
        return self

    # -------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save to one ``.safetensors`` file (see :meth:`LatentModel.save`).

        A family member given as an instance (``likelihood=Gaussian(0.1)``,
        ``noise=Masking(0.25)``) is stored as its ``spec()`` string, from which its
        registry builds an equal one at :func:`~latentzoo.load`.
        """
        est = copy.copy(self)
        for name, value in self.get_params(deep=False).items():
            if isinstance(value, _SPEC_FAMILIES):
                setattr(est, name, value.spec())
        super(NeuralEstimator, est).save(path)

    def _get_fitted_state(self):
        tensors = {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        meta = {"n_features_in_": int(self.n_features_in_), "history_": self.history_}
        return tensors, meta

    def _set_fitted_state(self, tensors, meta):
        # JSON stored tuple parameters (hidden, image_shape) as lists: give them back as tuples
        for name in ("hidden", "image_shape"):
            if isinstance(getattr(self, name, None), list):
                setattr(self, name, tuple(getattr(self, name)))
        self.n_features_in_ = int(meta["n_features_in_"])
        likelihood = make_likelihood(self.likelihood)
        module = self._build_module(self.n_features_in_, likelihood)
        state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"the saved weights do not match {type(self).__name__}'s network: {e}") from None
        self.module_ = module.to(resolve_device(self.device)).eval()
        self.history_ = meta["history_"]
        return self

    def _expected_failed_checks(self) -> dict:
        return {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # networks compute in float32
        tags.input_tags.allow_nan = True  # NaN = missing: filled for the encoder, left out of the loss
        return tags

    #: fits :class:`latentzoo.Imputer` averages by default (a network's imputation varies with its seed)
    _imputer_n_models = 3

    @classmethod
    def _imputer_params(cls) -> dict:
        """Parameters :class:`latentzoo.Imputer` gives a neural model unless told otherwise."""
        return {"verbose": 0}

    @classmethod
    def _contract_params(cls) -> dict:
        return {"hidden": (8,), "max_epochs": 3, "batch_size": 16, "verbose": 0, "random_state": 0,
                "patience": None}
