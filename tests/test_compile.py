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
