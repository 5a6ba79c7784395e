"""Discriminator augmentation (src/augment): ADA's transforms against their definitions (Karras et
al. 2020, appendix B), the adaptive rule, DiffAugment's policies, colour spaces, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from src.augment.ada import PIPELINES, AugmentPipe, filter_bank
from src.augment.adaptive import AdaptiveP
from src.augment.diffaugment import cutout, translation
from src.augment.geometry import SYM6, rotate, translate, warp
from src.augment.pipeline import DEFAULTS, Augmentation, check_augment, in_centred_rgb
from src.colorspaces import COLORSPACE_NAMES, get_colorspace
from src.nn.layers import make_fir


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")


def _blob(size: int, x0: float, y0: float) -> torch.Tensor:
    ys, xs = _grid(size, size)
    return torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / 4)[None, None]


def _smooth(n: int, c: int, size: int) -> torch.Tensor:
    """Band-limited random images (periods of 16 px and more), where resampling is near exact."""
    ys, xs = _grid(size, size)
    g = torch.Generator().manual_seed(1)
    out = torch.zeros(n, c, size, size)
    for _ in range(4):
        fx, fy, phase = torch.rand(3, n, c, 1, 1, generator=g) * torch.tensor([0.4, 0.4, 6.3]).view(3, 1, 1, 1, 1)
        out += torch.sin(fx * xs + fy * ys + phase)
    return out / 4


def _centroid(img: torch.Tensor, near: tuple[float, float]) -> tuple[float, float]:
    """Intensity centroid within 6 px of ``near`` (the corners hold reflected content, by design)."""
    ys, xs = _grid(*img.shape[-2:])
    w = img[0, 0].clamp_min(0) * (((xs - near[0]) ** 2 + (ys - near[1]) ** 2) < 36)
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


def _pipe(*transforms: str, p: float = 1.0) -> AugmentPipe:
    return AugmentPipe(transforms, p=p)


# ----------------------------------------------------------------------------------------------
# Geometry: the warp executes the matrix it is given.


def test_warp_identity_and_integer_translation_are_exact_inside():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 24, 24)
    f = make_fir(SYM6)
    eye = torch.eye(3).expand(2, 3, 3)
    assert torch.allclose(warp(x, eye, f), x, atol=1e-5)
    # output pixel q reads input pixel q + (-3, 2): out[y, x] = in[y + 2, x - 3]
    out = warp(x, translate(torch.full((2,), -3.0), torch.full((2,), 2.0)), f)
    assert torch.allclose(out[:, :, 4:-4, 4:-4], x[:, :, 6:-2, 1:-7], atol=1e-4)


@pytest.mark.parametrize("degrees", [90, 30, -45])
def test_rotation_moves_a_point_to_its_rotated_position(degrees):
    size, c = 33, 16.0
    x = _blob(size, c + 7, c)  # 7 px right of the centre
    theta = torch.tensor([math.radians(degrees)])
    out = warp(x, rotate(-theta), make_fir(SYM6))  # inverse map of a rotation by theta
    ex, ey = c + 7 * math.cos(theta), c + 7 * math.sin(theta)
    cx, cy = _centroid(out, (ex, ey))
    assert abs(cx - ex) < 0.25 and abs(cy - ey) < 0.25, (cx, cy, ex, ey)


# ----------------------------------------------------------------------------------------------
# The pipeline at p = 1, one transform at a time, and at p = 0.


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_p_zero_is_the_identity_exactly(pipeline):
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(_pipe(*PIPELINES[pipeline], p=0.0)(x), x)
    for mode in ("ada", "fixed"):
        assert torch.equal(Augmentation("lab", mode=mode, pipeline=pipeline, p=0.0)(x), x)
    assert torch.equal(Augmentation("rgb", mode="none")(x), x)


def test_xflip_and_rotate90_give_flipped_and_quarter_turned_copies():
    """Blitting runs through the same anti-aliased warp as the reference's, so a flip is exact up to
    the wavelet filter's phase error (sym6 is not symmetric: about 0.04 px of shift, the same in
    stylegan2-ada-pytorch's pipeline): checked on band-limited images, away from the border."""
    torch.manual_seed(0)
    x = _smooth(16, 3, 24)
    out = _pipe("xflip")(x)
    inner = (slice(None), slice(4, -4), slice(4, -4))  # the filters reach past the border
    errors = [min((a - b)[inner].abs().max(), (a - b.flip(-1))[inner].abs().max()) for a, b in zip(out, x)]
    assert max(errors) < 0.05
    out = _pipe("rotate90")(x)
    errors = [min((a - torch.rot90(b, k, dims=(1, 2)))[inner].abs().max() for k in range(4)) for a, b in zip(out, x)]
    assert max(errors) < 0.05


def test_brightness_shifts_every_pixel_by_one_drawn_amount():
    torch.manual_seed(0)
    x = torch.rand(4000, 3, 2, 2) * 2 - 1
    shift = _pipe("brightness")(x) - x
    per_sample = shift.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    assert abs(per_sample[:, 0].std().item() - 0.2) < 0.01  # brightness_std
    assert abs(per_sample[:, 0].mean().item()) < 0.01


def test_contrast_scales_about_zero_and_luma_flip_reflects_luma():
    torch.manual_seed(0)
    x = torch.rand(200, 3, 4, 4) * 2 - 1
    ratio = (_pipe("contrast")(x) / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4)
    assert abs(ratio[:, 0].log2().std().item() - 0.5) < 0.07  # contrast_std
    out = _pipe("lumaflip")(x)
    luma_in, luma_out = x.mean(1), out.mean(1)
    flipped = (luma_out + luma_in).flatten(1).abs().amax(1) < 1e-5
    kept = (luma_out - luma_in).flatten(1).abs().amax(1) < 1e-5
    assert bool((flipped | kept).all()) and 0.3 < flipped.float().mean() < 0.7
    assert torch.allclose(out - out.mean(1, keepdim=True), x - x.mean(1, keepdim=True), atol=1e-5)  # chroma kept


@pytest.mark.parametrize("name", ["hue", "saturation"])
def test_hue_and_saturation_keep_luma(name):
    torch.manual_seed(0)
    x = torch.rand(64, 3, 4, 4) * 2 - 1
    out = _pipe(name)(x)
    assert torch.allclose(out.mean(1), x.mean(1), atol=1e-5)
    assert not torch.allclose(out, x, atol=1e-3)
    if name == "hue":  # a rotation about the luma axis keeps the chroma's length
        chroma = lambda t: (t - t.mean(1, keepdim=True)).norm(dim=1)  # noqa: E731
        assert torch.allclose(chroma(out), chroma(x), atol=1e-4)


def test_filter_bank_reconstructs_and_filtering_keeps_the_image_with_unit_gains():
    bank = filter_bank()
    assert bank.shape == (4, 43)
    impulse = torch.zeros(43)
    impulse[21] = 1
    assert torch.allclose(bank.sum(0), impulse, atol=1e-6)  # the bands add up to the identity
    x = torch.randn(2, 3, 16, 16)
    assert not torch.allclose(_pipe("imgfilter")(x), x, atol=1e-3)


def test_cutout_zeroes_a_quarter_and_noise_adds():
    torch.manual_seed(0)
    x = torch.ones(400, 1, 16, 16)
    out = _pipe("cutout")(x)
    zero = (out == 0).flatten(1).float().mean(1)
    assert 0.1 < zero.mean() < 0.26 and zero.max() <= 0.25 + 1e-6  # half the side, clipped at edges
    assert not torch.equal(_pipe("noise")(x), x)


def test_probability_is_p_times_the_multiplier():
    torch.manual_seed(0)
    x = torch.rand(4000, 3, 1, 1)
    changed = ((_pipe("brightness", p=0.3)(x) - x).abs().flatten(1).amax(1) > 0).float().mean()
    assert abs(changed.item() - 0.3) < 0.03
    # rotation: pre OR post, each with 1 - sqrt(1 - p): either happens with p
    pipe = _pipe("rotate", p=0.3)
    m = pipe.geometric_matrix(20000, (8, 8), "cpu")
    rotated = (m[:, 0, 1].abs() > 1e-7).float().mean()
    assert abs(rotated.item() - 0.3) < 0.02


# ----------------------------------------------------------------------------------------------
# The adaptive rule.


def test_adaptive_rule_moves_p_by_the_papers_step():
    ada = AdaptiveP(target=0.6, interval=4, kimg=500)
    p = torch.tensor(0.0)
    for _ in range(4):
        ada.accumulate(torch.tensor([1.0, 2.0, -0.5, 3.0]))  # r_t = 0.5 < 0.6
    ada.update(p, global_batch=4)
    assert p.item() == 0.0 and ada.rt.item() == pytest.approx(0.5)  # clamped at 0
    for _ in range(4):
        ada.accumulate(torch.ones(8))  # r_t = 1 > 0.6
    ada.update(p, global_batch=8)
    assert p.item() == pytest.approx(8 * 4 / (500 * 1000))
    assert ada.count.item() == 0 and ada.sign_sum.item() == 0  # reset after each update
    ada.accumulate(-torch.ones(8))
    ada.update(p, global_batch=8)
    assert p.item() == 0.0


def test_adaptive_rule_is_due_after_every_interval_iterations():
    """stylegan2-ada-pytorch training/training_loop.py counts the iteration, then adjusts when
    ``batch_idx % ada_interval == 0``: after iterations 4, 8, ... for interval 4, never after 1."""
    ada = AdaptiveP(interval=4)
    assert [i for i in range(13) if ada.due(i)] == [4, 8, 12]
    assert [i for i in range(1, 4) if AdaptiveP(interval=1).due(i)] == [1, 2, 3]


def test_stylegan2_adjusts_p_after_iterations_4_and_8_with_interval_4():
    """The family's step, in training_step's order (phases feed r_t, then
    ``adjust_augmentation``, then ``advance``), with r_t = 1 > target: p after iterations 1-3 is
    its start, then one step up at iteration 4 and another at 8 (the trained version below)."""
    from tests.test_training_step import tiny

    model = tiny(augment=dict(mode="ada", p=0.1, interval=4, kimg=1.0))
    after = []
    for _ in range(8):
        model.observe_real_logits(torch.ones(4))
        model.adjust_augmentation(4, {})
        model.advance(4)
        after.append(model.augmentation.p.item())
    step = 4 * 4 / (1.0 * 1000)  # batch * interval / (kimg * 1000)
    assert after == pytest.approx([0.1] * 3 + [0.1 + step] * 4 + [0.1 + 2 * step])


@pytest.mark.slow
def test_ada_first_moves_p_after_interval_iterations_of_training():
    """A tiny StyleGAN2 trained 8 iterations with interval 4, every real logit counted as positive
    (r_t = 1 > target): p after each iteration stays at its start through iterations 1-3 and rises
    by batch * interval / (kimg * 1000) at iterations 4 and 8, as in NVIDIA's loop."""
    import pytorch_lightning as pl

    from src.modules.stylegan2.module import StyleGAN2
    from tests.test_training_step import BATCH, fit, tiny

    class Overfitting(StyleGAN2):
        def observe_real_logits(self, real_logits: torch.Tensor) -> None:
            super().observe_real_logits(torch.ones_like(real_logits))

    class RecordP(pl.Callback):
        def __init__(self) -> None:
            self.p: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, *args) -> None:
            self.p.append(pl_module.augmentation.p.item())

    record = RecordP()
    augment = dict(mode="ada", pipeline=["xflip"], p=0.1, interval=4, kimg=1.0)
    model = tiny(Overfitting, augment=augment, loss=dict(pl_weight=0.0, r1_interval=2))
    fit(model, 8, callbacks=[record])
    step = BATCH * 4 / (1.0 * 1000)
    assert record.p == pytest.approx([0.1] * 3 + [0.1 + step] * 4 + [0.1 + 2 * step])


# ----------------------------------------------------------------------------------------------
# DiffAugment.


def test_diffaugment_translation_is_a_zero_filled_integer_shift():
    torch.manual_seed(0)
    x = torch.randn(8, 2, 16, 16)
    out = translation(x)
    for a, b in zip(out, x):
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(b)
                ys, xs = slice(max(dy, 0), 16 + min(dy, 0)), slice(max(dx, 0), 16 + min(dx, 0))
                ys0, xs0 = slice(max(-dy, 0), 16 + min(-dy, 0)), slice(max(-dx, 0), 16 + min(-dx, 0))
                shifted[:, ys, xs] = b[:, ys0, xs0]
                found |= torch.equal(a, shifted)
        assert found


def test_diffaugment_cutout_is_a_square_of_half_the_side():
    torch.manual_seed(0)
    out = cutout(torch.ones(500, 1, 16, 16))
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() >= 4 * 4  # an 8x8 square; at most half of each side falls off


# ----------------------------------------------------------------------------------------------
# Colour spaces and gradients.


def test_colour_transforms_in_other_spaces_go_through_rgb():
    torch.manual_seed(0)
    lab = get_colorspace("lab")
    rgb = torch.rand(4, 3, 8, 8) * 0.6 + 0.2
    x = lab.encode(rgb)
    shift = lambda t: t + 0.1  # noqa: E731 - a brightness change in centred RGB
    assert torch.allclose(in_centred_rgb(x, lab, shift), lab.encode(rgb + 0.05), atol=1e-4)
    assert torch.equal(in_centred_rgb(x, lab, lambda t: t), x)  # the identity leaves x exactly
    out_of_gamut = x.clone()
    out_of_gamut[:, 1] = 3.0  # a fake far outside the gamut keeps that outside part
    assert (in_centred_rgb(out_of_gamut, lab, shift)[:, 1] > 2).all()
    rgbspace = get_colorspace("rgb")
    assert torch.equal(in_centred_rgb(x, rgbspace, shift), x + 0.1)
    rgba = torch.rand(4, 4, 8, 8) * 2 - 1
    out = Augmentation("rgba", mode="diffaugment", policy=["color"])(rgba)
    assert torch.equal(out[:, 3], rgba[:, 3]) and not torch.equal(out[:, :3], rgba[:, :3])  # alpha is kept
    out = Augmentation("rgba", mode="fixed", pipeline="color", p=1.0)(rgba)
    assert torch.equal(out[:, 3], rgba[:, 3]) and not torch.equal(out[:, :3], rgba[:, :3])


@pytest.mark.parametrize("colorspace", COLORSPACE_NAMES)
@pytest.mark.parametrize("mode", ["fixed", "diffaugment"])
def test_every_colour_space_augments_with_gradients(colorspace, mode):
    torch.manual_seed(0)
    cs = get_colorspace(colorspace)
    x = cs.encode(torch.rand(4, cs.input_channels, 16, 16)).requires_grad_(True)
    aug = Augmentation(colorspace, mode=mode, pipeline="bgcfnc", p=1.0)
    out = aug(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_r1_double_backward_through_ada():
    """R1 differentiates D(augment(x)) w.r.t. x, then that gradient w.r.t. D's weights."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    w = torch.randn(3, 3, 3, 3, requires_grad=True)
    aug = Augmentation("rgb", mode="fixed", pipeline="bgcfnc", p=1.0)
    logits = torch.nn.functional.conv2d(aug(x), w).square().mean((1, 2, 3))
    (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    g.square().sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("mode", "sometimes", r"model.augment.mode='sometimes': allowed values are none, ada"),
        ("pipeline", "bgx", r"model.augment.pipeline='bgx': allowed values are blit"),
        ("pipeline", ["xflip", "warp"], r"unknown transform\(s\) \['warp'\]"),
        ("p", -0.1, r"model.augment.p=-0.1: expected a number >= 0"),
        ("target", 1.0, r"model.augment.target=1.0: expected a value in \(0, 1\)"),
        ("interval", 0, r"model.augment.interval=0: expected an integer >= 1"),
        ("kimg", 0, r"model.augment.kimg=0"),
        ("policy", ["color", "zoom"], r"model.augment.policy=.*unknown \['zoom'\]"),
    ],
)
def test_bad_augment_config_names_the_key(key, value, match):
    with pytest.raises(ValueError, match=match):
        check_augment({**DEFAULTS, key: value})


# ----------------------------------------------------------------------------------------------
# Training through the real configs: ADA's state resumes exactly, every colour space trains with
# augmentation on, Freeze-D keeps the frozen layers, bad values stop the launch.


def _last(log_dir, name: str) -> dict:
    return torch.load(log_dir / "quickstart" / name / "checkpoints" / "last.ckpt", weights_only=True)


def test_ada_resumes_exactly_with_its_accumulator_mid_interval(tiny_cfg, log_dir):
    from src.train import train
    from tests.test_train import _assert_same_state

    common = [
        "model.augment.mode=ada",
        "model.augment.p=0.5",
        "model.augment.interval=3",  # the split at iteration 2 falls inside an interval
        "model.augment.kimg=0.1",
        "model.loss.r1_interval=2",
        "model.loss.pl_interval=2",
        "callbacks.sample_grid.every_kimg=100",
    ]
    metrics = train(tiny_cfg("trainer.max_steps=5", *common, run_name="straight"))
    train(tiny_cfg("trainer.max_steps=2", *common, run_name="split"))
    half = _last(log_dir, "split")["state_dict"]
    assert half["augmentation.adaptive.count"] > 0  # pending signs travel in the checkpoint
    train(tiny_cfg("trainer.max_steps=5", "ckpt_path=last", *common, run_name="split"))
    a, b = _last(log_dir, "straight"), _last(log_dir, "split")
    _assert_same_state(a, b)
    p = a["state_dict"]["augmentation.pipe.p"]
    step = 4 * 3 / (0.1 * 1000)  # batch * interval / (kimg * 1000)
    # one update, after iteration 3 (NVIDIA's count: after iterations interval, 2 interval, ...), +-step
    assert any(abs(p.item() - (0.5 + k * step)) < 1e-6 for k in (-1, 1))
    assert metrics["augment/p"] == pytest.approx(p.item()) and -1 <= metrics["augment/rt"] <= 1


@pytest.mark.parametrize("colorspace", COLORSPACE_NAMES)
def test_every_colour_space_trains_with_augmentation(tiny_cfg, colorspace):
    from src.train import train

    for mode in ("fixed", "diffaugment") if colorspace == "lab" else ("fixed",):
        metrics = train(
            tiny_cfg(
                f"colorspace={colorspace}",
                f"model.augment.mode={mode}",
                "model.augment.p=0.8",
                "model.augment.pipeline=bgcfnc",
                "model.loss.r1_interval=1",
                "trainer.max_steps=2",
                "callbacks.sample_grid.every_kimg=100",
                run_name=f"{colorspace}-{mode}",
            )
        )
        assert all(math.isfinite(float(metrics[k])) for k in ("Loss/G", "Loss/D", "Loss/r1")), metrics


def test_freeze_d_keeps_the_first_layers(tiny_cfg, log_dir):
    from src.train import train

    # the tiny 16 px D has 7 block layers: FromImage, conv0, conv1, skip (16 px), conv0, conv1, skip (8 px)
    train(tiny_cfg("model.freeze_d=4", "trainer.max_steps=2", "callbacks.sample_grid.every_kimg=100"))
    state = _last(log_dir, "test")["state_dict"]
    torch.manual_seed(0)  # the module is built with the seed the run used: compare with its init
    from hydra.utils import instantiate

    init = instantiate(tiny_cfg("model.freeze_d=4", run_name="init").model).state_dict()
    for name in ("D.blocks.0.fromrgb.weight", "D.blocks.0.conv1.weight", "D.blocks.0.skip.weight"):
        assert torch.equal(state[name], init[name]), name
    assert not torch.equal(state["D.blocks.1.conv0.weight"], init["D.blocks.1.conv0.weight"])


@pytest.mark.parametrize(
    "override,key",
    [
        ("model.freeze_d=8", "model.freeze_d=8: expected 0..7"),
        ("model.augment.mode=always", "model.augment.mode='always'"),
        ("model.augment.pipeline=bgq", "model.augment.pipeline='bgq'"),
        ("model.augment.target=1.5", "model.augment.target=1.5"),
        ("model.augment.interval=-1", "model.augment.interval=-1"),
    ],
)
def test_bad_augmentation_config_stops_before_writing(tiny_cfg, log_dir, override, key):
    from src.train import train
    from src.utils.validation import ConfigError

    with pytest.raises(ConfigError) as err:
        train(tiny_cfg(override))
    assert key in str(err.value)
    assert not (log_dir / "quickstart" / "test").exists()


def test_visualize_augment_plots_p_and_rt_of_runs(tiny_cfg, log_dir, tmp_path):
    from src.tools import visualize
    from src.train import train
    from src.visualize.augment import read_run

    common = ["trainer.max_steps=3", "callbacks.sample_grid.every_kimg=100"]
    train(tiny_cfg(*common, "model.augment.mode=ada", "model.augment.interval=1", logger="csv", run_name="ada"))
    train(tiny_cfg(*common, logger="csv", run_name="plain"))
    runs = [log_dir / "quickstart" / "ada", log_dir / "quickstart" / "plain"]
    series = read_run(runs[0])
    assert [k for k, _ in series["augment/p"]] == [0.004, 0.008, 0.012]  # kimg of each iteration
    assert series["D/real_sign"] and not read_run(runs[1])["augment/p"]
    visualize.main(["augment", f"runs=[{runs[0]},{runs[1]}]", f"out={tmp_path}"])
    assert (tmp_path / "augment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="augment: .*no csv/\\*/metrics.csv \\(train with logger=csv"):
        visualize.main(["augment", f"runs=[{tmp_path}]", f"out={tmp_path}"])
