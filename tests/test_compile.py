"""``compile=True`` (torch.compile) trains the same model as eager execution, up to
floating-point reassociation by the compiler's fused kernels."""
import numpy as np
import torch

from latentzoo import VAE, Autoencoder


def test_compiled_autoencoder_matches_eager(digits):
    X = digits[0][:400]
    kw = dict(n_components=2, hidden=(16,), likelihood="bernoulli", max_epochs=2, batch_size=64,
              random_state=0, verbose=0, device="cpu", patience=None)
    eager = Autoencoder(**kw).fit(X)
    compiled = Autoencoder(compile=True, **kw).fit(X)
    np.testing.assert_allclose(compiled.history_["train_loss"], eager.history_["train_loss"], rtol=1e-4)
    for p, q in zip(eager.module_.parameters(), compiled.module_.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_compiled_vae_trains_finite(digits):
    X = digits[0][:400]
    vae = VAE(2, hidden=(16,), max_epochs=2, batch_size=64, random_state=0, verbose=0, device="cpu",
              compile=True).fit(X)
    assert np.isfinite(vae.history_["train_loss"]).all()
    assert np.isfinite(vae.score_samples(X[:20], n_importance=8)).all()


def _explain_or_skip(fn, *args):
    import torch._dynamo as dynamo

    if not dynamo.is_dynamo_supported():
        import pytest

        pytest.skip("torch.compile (dynamo) is not supported on this platform")
    dynamo.reset()
    return dynamo.explain(fn)(*args)


def test_maybe_split_does_not_break_the_compiled_graph():
    # its eager CPU shortcut (skip the mask when the batch has no NaN) is data-dependent
    # control flow, bool(tensor): a graph break in every compiled step; compiled, it builds the mask
    from latentzoo.neural.missing import MissingInput

    inputs = MissingInput(5)
    inputs.set_fill(np.arange(5.0))

    def fn(x):
        filled, mask = inputs.maybe_split(x)
        return filled * mask

    x = torch.randn(3, 5)
    x_nan = x.clone()
    x_nan[0, 1] = float("nan")
    for batch in (x, x_nan):
        e = _explain_or_skip(fn, batch)
        assert e.graph_break_count == 0 and e.graph_count == 1, [str(b.reason) for b in e.break_reasons]
    compiled = torch.compile(fn)
    want = torch.where(torch.isnan(x_nan), 0.0, x_nan)
    torch.testing.assert_close(compiled(x_nan), want)
    torch.testing.assert_close(compiled(x), x)
    assert inputs.maybe_split(x)[1] is None  # eager CPU: the shortcut stays


def test_autoencoder_training_step_is_one_graph(digits):
    X = digits[0][:64]
    ae = Autoencoder(2, hidden=(8,), max_epochs=1, random_state=0, verbose=0, patience=None).fit(X)
    e = _explain_or_skip(ae.module_, torch.from_numpy(X[:16]))
    assert e.graph_break_count == 0, [str(b.reason) for b in e.break_reasons]
