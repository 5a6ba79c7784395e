"""Gradient accumulation (``data.batch_gpu``, as NVIDIA's ``--batch-gpu``): a per-device batch of 8 in
passes of 4 or 2 trains like the batch of 8 in one pass (fp32, CPU), with every phase on: Gmain with
style mixing and labels, path length (its running mean couples the samples: two passes), Dmain and
R1, minibatch-stddev groups of 2. Noise inputs are off: they are drawn per pass, as per rank in DDP.
Also: each pass really holds batch_gpu rows, and bad values stop at start-up naming the key."""

from __future__ import annotations

import pytest
import torch

from src.train import train
from src.utils.validation import ConfigError
from tests.conftest import TINY, compose_cfg
from tests.test_ddp import FAMILIES
from tests.test_train import _final_state

STEPS = 4
COMMON = [
    *[o for o in TINY if not o.startswith("data.batch_size")],
    "data.batch_size=8",
    "model.use_noise=false",
    "model.loss.r1_interval=2",
    "model.loss.pl_interval=3",  # Greg runs at iterations 0 and 3, Dreg at 0 and 2
    "model.loss.pl_batch_shrink=2",
    "model.loss.r1_gamma=1.0",
    "model.ema.rampup=null",
    "model.ema.kimg=0.01",
    "model.optim.eps=1e-3",  # near-zero gradients are rounding noise; a large eps keeps Adam from amplifying it
    f"trainer.max_steps={STEPS}",
    "logger=none",
]


def _run(log_dir, name: str, *extra: str) -> dict:
    train(compose_cfg([*COMMON, f"run_name={name}", *extra]))
    return _final_state(log_dir, name)


# SEGAN's sampled per-layer coordinates and orthogonality term, as the DDP test runs them (minus its DDP settings)
SEGAN_SAMPLED = [o for o in FAMILIES["segan_sampled"] if o not in FAMILIES["stylegan2"]]


# StyleGAN3 config R with its blur; the input magnitude EMAs frozen (beta 1): moving, each round's layers
# would see the EMA the previous round moved (a drift of order 1 - beta, documented in the module;
# test_stylegan3_training.py checks the per-round rule)
STYLEGAN3_R = [
    "model=stylegan3",
    "model.conv_kernel=1",
    "model.use_radial_filters=true",
    "model.blur.sigma=2",
    "model.blur.fade_kimg=0.1",
    "model.magnitude_ema_beta=1",
]


@pytest.mark.parametrize(
    ("batch_gpu", "family"),
    [(4, []), (2, []), (4, SEGAN_SAMPLED), pytest.param(4, STYLEGAN3_R, marks=pytest.mark.slow)],
)
def test_accumulation_equals_the_full_batch(log_dir, batch_gpu, family, monkeypatch):
    from src.modules.stylegan2.discriminator import Discriminator

    seen: list[int] = []
    original = Discriminator.forward

    def counting(self, img, *args, **kwargs):
        seen.append(img.shape[0])
        return original(self, img, *args, **kwargs)

    full = _run(log_dir, "full", *family)
    monkeypatch.setattr(Discriminator, "forward", counting)
    acc = _run(log_dir, f"acc{batch_gpu}", f"data.batch_gpu={batch_gpu}", *family)
    assert seen and max(seen) == batch_gpu  # D never saw more than one pass's rows

    assert acc["gamut"]["cur_nimg"] == full["gamut"]["cur_nimg"] == 8 * STEPS
    a, f = acc["state_dict"], full["state_dict"]
    trained = [k for k in f if k.startswith(("G.", "D.", "G_ema.")) and f[k].is_floating_point()]
    # relative to the value: the mapping stores its weights times 1/lr_multiplier (~100), where one
    # float32 step is 7.6e-6
    worst = max(((a[k] - f[k]).abs() / (1 + f[k].abs())).max().item() for k in trained + ["pl_mean"])
    print(
        f"max |param(batch_gpu={batch_gpu}) - param(whole batch)| / (1 + |param|) after {STEPS} iterations: {worst:.3g}"
    )
    assert worst < 1e-6
    assert f["pl_mean"] != 0  # path length ran
    # the fakes' w are mapped for the whole batch at once: w_avg moves as with one pass
    assert (a["G.mapping.w_avg"] - f["G.mapping.w_avg"]).abs().max() < 1e-6
    # the tolerance is small against what training changed
    init = _initial(log_dir, family)
    moved = max((f[k] - init[k]).abs().max().item() for k in trained if k.startswith("G."))
    assert moved > 100 * 1e-5


def _initial(log_dir, family: list[str]) -> dict:
    """The networks before training: a zero-step run of the same config."""
    path = log_dir / "quickstart" / "init" / "checkpoints" / "last.ckpt"
    if not path.exists():
        train(compose_cfg([*COMMON, "run_name=init", "trainer.max_steps=0", *family]))
    return torch.load(path, weights_only=True)["state_dict"]


def test_path_length_surrogate_has_the_penalty_gradient():
    """The two-pass path length: the surrogate's gradient over each part of the batch adds up to the
    gradient of mean((len - a')^2) with a' = a + decay * (mean(len) - a) over the whole batch."""
    from src.modules.stylegan2 import losses

    torch.manual_seed(0)
    lengths = torch.rand(6, dtype=torch.float64) + 0.5
    pl_mean, decay = torch.tensor(0.7, dtype=torch.float64), 0.3
    whole = lengths.clone().requires_grad_(True)
    penalty, new_mean = losses.path_length_penalty(whole, pl_mean, decay)
    (expected,) = torch.autograd.grad(penalty.mean(), whole)

    new_mean = new_mean.detach()
    excess = (lengths - new_mean).sum()
    parts = []
    for rows in (slice(0, 6, 2), slice(1, 6, 2)):  # two passes of 3 rows
        part = lengths[rows].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(losses.path_length_surrogate(part, new_mean, excess, 6, decay).mean() / 2, part)
        parts.append((rows, g))
    got = torch.empty(6, dtype=torch.float64)
    for rows, g in parts:
        got[rows] = g
    assert torch.allclose(got, expected, atol=1e-12)
    # without the coupling term (each pass on its own mean) the gradient is not the batch's
    assert not torch.allclose(2 * (lengths - new_mean) / 6, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.batch_gpu=3"], r"data.batch_gpu=3 does not divide data.batch_size=8"),
        (["data.batch_gpu=0"], r"data.batch_gpu=0: expected a positive integer"),
        (
            ["data.batch_gpu=2", "model.mbstd_group=4"],
            r"data.batch_gpu=2 is smaller than max\(2, model.mbstd_group=4\)",
        ),
        (["data.batch_gpu=1"], r"data.batch_gpu=1 is smaller than max\(2, model.mbstd_group=2\)"),
        (
            ["data.batch_gpu=2", "model.loss.pl_batch_shrink=4"],
            r"path length runs on data.batch_size // model.loss.pl_batch_shrink = 2 rows",
        ),
    ],
)
def test_bad_batch_gpu_stops_at_start_up(log_dir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(compose_cfg([*COMMON, "run_name=bad", *overrides]))
    assert not (log_dir / "quickstart" / "bad").exists()


def test_chromagan_refuses_batch_gpu(log_dir):
    from src.utils.validation import validate

    cfg = compose_cfg(["experiment=chromagan", "data.root=/x", "data.batch_gpu=4"])
    with pytest.raises(ConfigError, match="data.batch_gpu=4: .*does not accumulate gradients"):
        validate(cfg)


def test_resume_with_another_batch_gpu_continues_exactly(log_dir):
    """batch_gpu changes memory, not the model: a run resumed with another value goes on (no frozen-key
    refusal) and ends where the straight run ends."""
    train(compose_cfg([*COMMON, "run_name=straight", "data.batch_gpu=4"]))
    train(compose_cfg([*COMMON, "run_name=split", "trainer.max_steps=2"]))
    train(compose_cfg([*COMMON, "run_name=split", "ckpt_path=last", "data.batch_gpu=4"]))
    a = _final_state(log_dir, "straight")["state_dict"]
    b = _final_state(log_dir, "split")["state_dict"]
    assert max(((a[k] - b[k]).abs() / (1 + b[k].abs())).max().item() for k in a if a[k].is_floating_point()) < 1e-6
