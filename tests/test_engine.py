"""The training engine on a toy module: history, early stopping, checkpoints, progress bar."""
import math
import sys

import pytest
import torch
from torch import nn

from latentzoo.neural.checkpoint import save_checkpoint
from latentzoo.neural.engine import EngineConfig, LossOutput, TensorBatches, _progress, linear_warmup, train


class Toy(nn.Module):
    """Scalar ``w`` pulled towards the training data (mean 10); validation loss ``(w - 3)^2``.

    Validation improves while ``w`` climbs to 3, then worsens: the best epoch is known
    from the weights, and a snapshot of ``w`` is kept at every validation pass (one
    batch per epoch), so ``snapshots[t]`` holds the weights after epoch t.
    """

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.snapshots = []

    def forward(self, x):
        if self.training:
            per = (x - self.w).pow(2).sum(-1)  # (B,)
        else:
            self.snapshots.append(self.w.detach().clone())
            per = (self.w - 3.0).pow(2).expand(len(x))
        return LossOutput(per.mean(), {"sq": per})


def _untimed(history):
    """The history without wall-clock epoch times (the only part a replay cannot repeat)."""
    return {k: v for k, v in history.items() if k != "epoch_time"}


def _data(n=64):
    return TensorBatches(10 + torch.randn(n, 1, generator=torch.Generator().manual_seed(0)), 16)


def _train(cfg, val=True, module=None, **kw):
    module = module or Toy()
    hist = train(module, _data(), _data(16) if val else None, cfg, seed=0, device=torch.device("cpu"), **kw)
    return module, hist


def test_history_holds_the_per_row_means_of_each_epoch():
    """With a vanishing rate w stays 0: every epoch's training loss is mean(x^2) over all 70 rows
    (four batches of 16 and one of 6: the batches are weighted by their sizes), the validation
    loss (0 - 3)^2 = 9."""
    data = _data(70)
    h = train(Toy(), data, _data(16), EngineConfig(lr=1e-12, max_epochs=3, patience=None, verbose=0), seed=0,
              device=torch.device("cpu"))
    mean_sq = [float(data.X.double().pow(2).mean())] * 3
    assert h["train_loss"] == pytest.approx(mean_sq, rel=1e-6) and h["train_sq"] == pytest.approx(mean_sq, rel=1e-6)
    assert h["val_loss"] == pytest.approx([9.0] * 3)
    assert len(h["lr"]) == len(h["epoch_time"]) == 3 == h["stopped_epoch"]


def test_early_stopping_restores_best_weights_and_respects_patience():
    patience = 3
    m, h = _train(EngineConfig(lr=0.5, max_epochs=50, patience=patience, verbose=0))
    best = h["best_epoch"]  # 1-based
    assert h["val_loss"][best - 1] == min(h["val_loss"])
    assert 1 < best < h["stopped_epoch"]  # improved for a while, then got worse
    assert h["stopped_epoch"] == best + patience  # stopped after exactly `patience` bad epochs
    assert all(v > h["val_loss"][best - 1] for v in h["val_loss"][best:])
    assert torch.equal(m.w.detach(), m.snapshots[best - 1])  # weights of the best epoch, not the last
    assert not torch.equal(m.w.detach(), m.snapshots[h["stopped_epoch"] - 1])


def test_no_validation_watches_train_loss():
    m, h = _train(EngineConfig(lr=0.5, max_epochs=30, patience=2, verbose=0), val=False)
    assert h["val_loss"] == []
    assert h["train_loss"][h["best_epoch"] - 1] == min(h["train_loss"])
    assert math.isclose(float(m.w.detach()), 10, abs_tol=1.0)  # the train loss pulls w to the data mean


def test_resume_matches_uninterrupted(tmp_path):
    cfg = dict(lr=0.2, patience=None, verbose=0, fingerprint="toy")
    full, hf = _train(EngineConfig(max_epochs=6, checkpoint_dir=str(tmp_path / "a"), **cfg))
    _train(EngineConfig(max_epochs=2, checkpoint_dir=str(tmp_path / "b"), **cfg))
    res, hr = _train(EngineConfig(max_epochs=6, checkpoint_dir=str(tmp_path / "b"), **cfg), resume=True)
    assert torch.equal(full.w, res.w) and _untimed(hf) == _untimed(hr)


class Weighted(Toy):
    """The toy's loss times a per-epoch ``weight`` input (as a VAE's KL weight)."""

    def forward(self, x, weight):
        out = super().forward(x)
        return LossOutput(weight * out.loss, {k: weight * v for k, v in out.terms.items()})


def test_schedules_feed_every_step_of_their_epoch_and_are_recorded():
    m, h = _train(EngineConfig(lr=0.1, max_epochs=5, patience=None, verbose=0), module=Weighted(),
                  schedules={"weight": linear_warmup(2.0, 3)})
    assert h["weight"] == pytest.approx([2 / 3, 4 / 3, 2.0, 2.0, 2.0])  # the ramp, then constant
    # the validation loss of epoch t is weight_t * (w_t - 3)^2, w_t the weights after epoch t
    expected = [h["weight"][t] * float((m.snapshots[t] - 3.0) ** 2) for t in range(5)]
    assert h["val_loss"] == pytest.approx(expected, rel=1e-6)


def test_checkpoint_fingerprint_mismatch_is_clear_error(tmp_path):
    _train(EngineConfig(max_epochs=1, checkpoint_dir=str(tmp_path), fingerprint="one", verbose=0))
    with pytest.raises(ValueError, match="different model or data"):
        _train(EngineConfig(max_epochs=2, checkpoint_dir=str(tmp_path), fingerprint="two", verbose=0), resume=True)


def test_corrupted_checkpoint_is_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"x": torch.zeros(3)}, "fp")
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match="unreadable"):
        _train(EngineConfig(max_epochs=2, checkpoint_dir=str(tmp_path), fingerprint="fp", verbose=0), resume=True)


def test_nan_loss_raises_with_epoch_and_restores_finite_weights():
    class Bomb(Toy):
        def forward(self, x):
            out = super().forward(x)
            epoch = len(self.snapshots)  # validation passes so far: the current epoch
            return out if epoch < 2 or not self.training else LossOutput(out.loss * float("nan"), out.terms)

    from latentzoo.neural.engine import TrainingDiverged

    m = Bomb()
    with pytest.raises(TrainingDiverged, match="epoch 3"):
        _train(EngineConfig(lr=0.1, max_epochs=5, patience=None, verbose=0), module=m)
    assert torch.isfinite(m.w).all()


def test_progress_bar_off_when_quiet(monkeypatch):
    assert _progress(EngineConfig(verbose=0), 0).disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not _progress(EngineConfig(verbose=1), 0).disable
    assert _progress(EngineConfig(verbose=0), 0).disable


# ---------------------------------------------------------------------- learning-rate schedules
def test_cosine_schedule_follows_the_closed_form():
    """eta_t = eta_min + (lr - eta_min) (1 + cos(pi t / T)) / 2 after epoch t (SGDR, Loshchilov & Hutter)."""
    lr, T = 0.1, 6
    _, h = _train(EngineConfig(lr=lr, max_epochs=T, patience=None, verbose=0, lr_schedule="cosine"))
    eta_min = lr * 1e-3
    expected = [eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(1, T + 1)]
    assert h["lr"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_plateau_schedule_halves_the_rate_when_the_loss_stalls():
    """The toy's validation loss stops improving once w passes 3: the rate must then halve
    after patience // 3 epochs without improvement, and never before the best epoch."""
    lr, patience = 0.5, 9
    _, h = _train(EngineConfig(lr=lr, max_epochs=40, patience=patience, verbose=0, lr_schedule="plateau"))
    rates = h["lr"]
    best = h["best_epoch"]
    assert all(r == lr for r in rates[:best])  # improving: no decay
    assert rates[best - 1 + patience // 3 + 1] == lr / 2  # first halving after `wait` stalled epochs
    assert min(rates) < lr / 2  # decays again while stalled


def test_constant_cosine_holds_the_rate_then_follows_torchs_cosine():
    """85% of max_epochs at lr, then the rest of the epochs on torch's CosineAnnealingLR
    (T_max = the remaining epochs, eta_min = lr/1000), the oracle."""
    lr, T, hold = 0.1, 20, 17
    _, h = _train(EngineConfig(lr=lr, max_epochs=T, patience=None, verbose=0, lr_schedule="constant-cosine"))
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T - hold, eta_min=lr * 1e-3)
    tail = []
    for _ in range(T - hold):
        opt.step()
        cos.step()
        tail.append(opt.param_groups[0]["lr"])
    # history_["lr"][t - 1] is the rate after epoch t (the rate of epoch t + 1)
    assert h["lr"] == pytest.approx([lr] * hold + tail, rel=1e-9, abs=1e-12)
    assert h["lr"][hold - 1] == lr and h["lr"][-1] == pytest.approx(lr * 1e-3)


class Interrupted(Toy):
    """The toy, stopped (KeyboardInterrupt) in the validation pass of epoch ``stop + 1``."""

    stop = 4

    def forward(self, x):
        if not self.training and len(self.snapshots) == self.stop:
            raise KeyboardInterrupt
        return super().forward(x)


@pytest.mark.parametrize("schedule", ["plateau", "constant-cosine"])
def test_resume_with_a_schedule_equals_uninterrupted(tmp_path, schedule):
    """The scheduler's state is checkpointed: a fit interrupted after 4 epochs and resumed
    follows the same rates and ends with the same weights as an uninterrupted one."""
    cfg = dict(lr=0.2, patience=None, verbose=0, fingerprint="toy", lr_schedule=schedule, max_epochs=12)
    full, hf = _train(EngineConfig(checkpoint_dir=str(tmp_path / "a"), **cfg))
    assert min(hf["lr"]) < 0.2  # the schedule did act during these epochs
    with pytest.raises(KeyboardInterrupt):
        _train(EngineConfig(checkpoint_dir=str(tmp_path / "b"), **cfg), module=Interrupted())
    res, hr = _train(EngineConfig(checkpoint_dir=str(tmp_path / "b"), **cfg), resume=True)
    assert torch.equal(full.w, res.w)
    assert hr["lr"] == hf["lr"]


def test_fused_optimizer_takes_adams_steps():
    # oracle: torch's reference (single-tensor, for-loop) Adam on a copy of the same parameters
    from latentzoo.neural._steps import make_optimizer

    torch.manual_seed(0)
    a = nn.Linear(5, 3)
    b = nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    opt_a = make_optimizer(a.parameters(), 1e-2, torch.device("cpu"))
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, foreach=False, fused=False)
    x = torch.randn(16, 5)
    for _ in range(5):
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            m(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_term_sums_are_the_per_term_totals():
    from latentzoo.neural._steps import TermSums

    sums = TermSums()
    steps = [{"rec": torch.randn(7), "kl": torch.rand(7, dtype=torch.float32)} for _ in range(4)]
    for terms in steps:
        sums.add(terms)
    got = sums.as_dict()
    assert list(got) == ["rec", "kl"] and got["rec"].dtype == torch.float64
    for k in ("rec", "kl"):
        torch.testing.assert_close(got[k], torch.cat([t[k] for t in steps]).double().sum())
    assert TermSums().as_dict() == {}
