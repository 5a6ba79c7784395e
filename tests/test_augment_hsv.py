"""ADA in ``colorspace=hsv``: hue is an angle (one turn over ``[-1, 1)``, ``-1`` and ``+1`` the same
red), so the stages that mix pixels (the warp, the image-space filter) must mix it as an angle and
cutout must paint a colour, not "hue half a turn" (src/augment/hue.py, docs/augmentation.md).

Each stage runs alone at p = 1 on images of one hue, and every pixel must keep that hue, compared
modulo one turn. On the code before the fix (hue interpolated as a number) the red images turn
cyan where their hue is written on both sides of the wrap, and cutout paints teal.
"""

from __future__ import annotations

import pytest
import torch

from src.augment.hue import circular_hue, hue_to_vector, vector_to_hue, wrap
from src.augment.pipeline import Augmentation
from src.colorspaces import get_colorspace

HSV = get_colorspace("hsv")
# the warp (a fractional translation, a rotation, the whole general-geometry group) and the filter
MIXING_STAGES = {
    "xfrac": ["xfrac"],
    "rotate": ["rotate"],
    "geom": ["scale", "rotate", "aniso", "xfrac"],
    "imgfilter": ["imgfilter"],
}


def _hue_error(out: torch.Tensor, hue: torch.Tensor | float) -> torch.Tensor:
    """Per-pixel distance of the hue channel from ``hue``, modulo one turn (in model units, 2 = a turn)."""
    return wrap(out[:, 0] - hue).abs()


def _constant_hue(hue: float, n: int = 8, size: int = 16, both_sides: bool = False) -> torch.Tensor:
    """HSV model-space images of one hue, with saturation and value varying (smooth random fields);
    ``both_sides``: the hue written as ``hue`` or ``hue - 2`` at random (for red: ``+1`` and ``-1``)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=g) * 1.2 - 0.6
    x[:, 0] = hue
    if both_sides:
        x[:, 0] -= 2 * (torch.rand(n, size, size, generator=g) < 0.5)
    return x


def _nearly_red(n: int = 8, size: int = 16) -> torch.Tensor:
    """Red images encoded from RGB ``(1, g, b)`` with g, b < 0.01: kornia writes their hue just above
    ``-1`` (g > b) or just below ``+1`` (b > g), about half each."""
    g = torch.Generator().manual_seed(1)
    rgb = torch.zeros(n, 3, size, size)
    rgb[:, 0] = 1
    rgb[:, 1:] = torch.rand(n, 2, size, size, generator=g) * 0.01
    return HSV.encode(rgb)


def _augment(x: torch.Tensor, pipeline: list[str], seed: int = 3, colorspace: str = "hsv") -> torch.Tensor:
    torch.manual_seed(seed)
    return Augmentation(colorspace, mode="fixed", pipeline=pipeline, p=1.0)(x)


@pytest.mark.parametrize("stage", sorted(MIXING_STAGES))
@pytest.mark.parametrize("hue", [1.0, 0.4, -0.75])
def test_a_constant_hue_stays_through_each_mixing_stage(stage, hue):
    """Warp (fractional translation, rotation, all of geom) and filter keep a constant hue exactly,
    also when it is written on both sides of the wrap (red as -1 and +1). Fails on the linear code."""
    for both_sides in (False, True):
        x = _constant_hue(hue, both_sides=both_sides)
        out = _augment(x, MIXING_STAGES[stage])
        assert not torch.allclose(out[:, 1:], x[:, 1:], atol=1e-3)  # the stage did move saturation/value
        assert _hue_error(out, hue).max() < 1e-5, (stage, hue, both_sides)


@pytest.mark.parametrize("stage", sorted(MIXING_STAGES))
def test_a_red_near_the_wrap_stays_red(stage):
    """An encoded red image (hue within 0.004 of +-1) stays red through each stage: on the linear code
    most of its pixels come out near hue 0, cyan."""
    x = _nearly_red()
    assert 0.3 < (x[:, 0] > 0).float().mean() < 0.7 and _hue_error(x, 1.0).max() < 0.004
    out = _augment(x, MIXING_STAGES[stage])
    assert _hue_error(out, 1.0).max() < 0.02, stage
    rgb = HSV.decode(out)
    assert (rgb[:, 0] >= rgb[:, 1:].amax(1) - 1e-6).all()  # red stays the largest primary


def test_hsv_cutout_paints_what_rgb_cutout_paints():
    """Cutout in hsv paints mid-gray (saturation 0, value 1/2, the hue kornia gives a gray pixel:
    -1), the colour RGB's cutout paints with zeros; outside the rectangle nothing changes, so the
    hue there is kept exactly. The linear code painted (0, 0, 0): hue half a turn (cyan) at
    saturation 1/2, a teal patch."""
    torch.manual_seed(0)
    rgb = torch.rand(16, 3, 16, 16) * 0.8 + 0.1
    x = HSV.encode(rgb)
    out = _augment(x, ["cutout"], seed=5)
    cut = (out != x).any(dim=1)  # [n, h, w]
    assert cut.any() and not cut.all()
    gray = torch.tensor([-1.0, -1.0, 0.0])[:, None]
    assert torch.equal(out.permute(1, 0, 2, 3)[:, cut], gray.expand(3, int(cut.sum())))
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~cut], x.permute(1, 0, 2, 3)[:, ~cut])
    same_cut = _augment(rgb * 2 - 1, ["cutout"], seed=5, colorspace="rgb")  # the same draws in rgb
    assert torch.allclose(HSV.decode(out), (same_cut + 1) / 2, atol=1e-6)


def test_the_colour_stage_keeps_red_on_the_wrap_red():
    """bgc's colour stage already went through RGB with the hue difference taken modulo one turn:
    brightness and contrast (no hue rotation or saturation) keep a red written as -1 and +1 red."""
    x = _constant_hue(1.0, both_sides=True)
    x[:, 1] = 0.5  # saturated enough that the colour change keeps a well-defined hue
    out = _augment(x, ["brightness", "contrast"])
    assert _hue_error(out, 1.0).max() < 1e-4


def test_the_hue_vector_round_trip_keeps_how_hue_is_written():
    """Through an identity stage, a hue comes back as written: -1 stays -1, +1 stays +1 (no flip to
    the other end of the range), and values outside [-1, 1) that a generator may produce stay."""
    hue = torch.tensor([-1.0, 1.0, -0.9999, 0.9999, 0.3, 1.5, -2.5])
    x = torch.stack([hue, torch.zeros(7), torch.zeros(7)])[None, :, :, None]
    assert hue_to_vector(x, 0).shape == (1, 5, 7, 1)
    back = vector_to_hue(hue_to_vector(x, 0), 0)
    assert torch.allclose(back, x, atol=1e-6)
    assert torch.equal(circular_hue(lambda t: t, x, 0)[:, 1:], x[:, 1:])


def test_opposite_hues_that_cancel_keep_finite_gradients_to_second_order():
    """Where a stage mixes opposite hues in equal weight the hue vector vanishes (no direction): the
    linear value is kept there and R1's double backward stays finite."""
    x = torch.zeros(1, 3, 1, 2)
    x[0, 0, 0] = torch.tensor([-0.5, 0.5])  # hue vectors (0, -1) and (0, 1)
    x.requires_grad_(True)
    average = lambda t: t.mean(dim=3, keepdim=True).expand_as(t)  # noqa: E731 - mixes the two pixels
    out = circular_hue(average, x, 0)
    assert torch.allclose(out[0, 0], torch.zeros(1, 2))  # the linear mean, where no angle exists
    (g,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g.square().sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(g2).all()


def test_r1_double_backward_through_hsv_ada():
    torch.manual_seed(0)
    x = HSV.encode(torch.rand(4, 3, 16, 16)).requires_grad_(True)
    w = torch.randn(3, 3, 3, 3, requires_grad=True)
    aug = Augmentation("hsv", mode="fixed", pipeline="bgcfnc", p=1.0)
    logits = torch.nn.functional.conv2d(aug(x), w).square().mean((1, 2, 3))
    (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    g.square().sum().backward()
    assert torch.isfinite(g).all() and w.grad is not None and torch.isfinite(w.grad).all()


def test_the_pipeline_learns_the_colour_space_from_the_family():
    """The family hands its ColorSpace to the augmentation: hsv gets the hue channel and the gray fill,
    every other space the RGB pipeline (zeros are a gray there)."""
    from tests.test_training_step import tiny

    hsv = tiny(colorspace="hsv", augment=dict(mode="ada")).augmentation.pipe
    assert hsv is not None and hsv.hue_channel == 0
    assert hsv.fill is not None and hsv.fill.tolist() == [-1.0, -1.0, 0.0]
    for name in ("rgb", "hsv_polar", "lab", "ycbcr"):
        pipe = Augmentation(name, mode="fixed", pipeline="bgcfnc").pipe
        assert pipe is not None and pipe.hue_channel is None and pipe.fill is None
