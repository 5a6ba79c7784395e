"""The color-space registry against its contract (src/colorspaces/; kornia.color,
NVlabs/stylegan3 #210 on HSV)."""

from __future__ import annotations

import math
from pathlib import Path

import kornia.color as KC
import pytest
import torch
from omegaconf import OmegaConf

from src.colorspaces import COLORSPACE_NAMES, ColorSpace, get_colorspace

CONF = Path(__file__).resolve().parents[1] / "src" / "conf"

# Round-trip tolerance per space (float32); Lab goes through pow/cbrt and XYZ matrices.
TOLERANCE = {"rgb": 1e-6, "rgba": 1e-6, "hsv": 1e-5, "hsv_polar": 1e-5, "lab": 1e-4, "ycbcr": 1e-5}


def random_rgb(channels: int, n: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g)


def special_pixels(channels: int) -> torch.Tensor:
    """Black, white, greys, near-greys, primaries, secondaries: [1, C, 12, 1]."""
    px = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0],
            [0.5, 0.5, 0.5],
            [0.2, 0.2, 0.2],
            [0.5, 0.5, 0.5001],
            [0.3, 0.3000001, 0.3],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 1.0, 1.0],
            [1.0, 0.0, 1.0],
        ]
    )
    x = px.T.reshape(1, 3, -1, 1)
    if channels == 4:
        x = torch.cat([x, torch.linspace(0, 1, x.shape[2]).reshape(1, 1, -1, 1)], dim=1)
    return x


def test_names_and_channels() -> None:
    assert COLORSPACE_NAMES == ("rgb", "gray", "rgba", "hsv", "hsv_polar", "lab", "ycbcr")
    expected = {"rgb": 3, "gray": 1, "rgba": 4, "hsv": 3, "hsv_polar": 3, "lab": 3, "ycbcr": 3}
    for name, channels in expected.items():
        cs = get_colorspace(name)
        assert isinstance(cs, ColorSpace)
        assert cs.name == name
        assert cs.channels == channels
        assert cs.input_channels == (4 if name == "rgba" else 3)


@pytest.mark.parametrize("name", COLORSPACE_NAMES)
def test_config_files_match_registry(name: str) -> None:
    cfg = OmegaConf.load(CONF / "colorspace" / f"{name}.yaml")
    cs = get_colorspace(name)
    assert dict(cfg) == {"name": cs.name, "channels": cs.channels, "input_channels": cs.input_channels}


@pytest.mark.parametrize("name", COLORSPACE_NAMES)
def test_config_files_take_the_counts_from_the_registry(name: str) -> None:
    """The YAML names the space; its channel counts are the registry's (``${gamut.*}``), never repeated."""
    cfg = OmegaConf.load(CONF / "colorspace" / f"{name}.yaml")
    assert OmegaConf.is_interpolation(cfg, "channels") and OmegaConf.is_interpolation(cfg, "input_channels")
    cfg.name = "rgba" if name != "rgba" else "gray"  # the counts follow the name
    cs = get_colorspace(cfg.name)
    assert (cfg.channels, cfg.input_channels) == (cs.channels, cs.input_channels)


def test_unknown_name_error_names_key_value_and_choices() -> None:
    with pytest.raises(ValueError) as err:
        get_colorspace("cmyk")
    msg = str(err.value)
    assert "colorspace.name" in msg and "'cmyk'" in msg
    for name in COLORSPACE_NAMES:
        assert name in msg


def test_colorspace_object_passes_through() -> None:
    cs = get_colorspace("lab")
    assert get_colorspace(cs) is cs


@pytest.mark.parametrize("name", [n for n in COLORSPACE_NAMES if n != "gray"])
def test_round_trip(name: str) -> None:
    cs = get_colorspace(name)
    random = random_rgb(cs.input_channels).transpose(0, 1).reshape(1, cs.input_channels, -1, 1)
    rgb = torch.cat([random, special_pixels(cs.input_channels)], dim=2)  # [1, C, P, 1]
    out = cs.decode(cs.encode(rgb))
    assert out.shape == rgb.shape
    torch.testing.assert_close(out, rgb, atol=TOLERANCE[name], rtol=0)


def test_gray_round_trip_is_luminance_repeated() -> None:
    cs = get_colorspace("gray")
    rgb = random_rgb(3)
    enc = cs.encode(rgb)
    assert enc.shape == (4, 1, 16, 16)
    luma = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    torch.testing.assert_close(cs.decode(enc), luma.repeat(1, 3, 1, 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", COLORSPACE_NAMES)
def test_encode_range(name: str) -> None:
    cs = get_colorspace(name)
    # The 4096 colors of a 16-level RGB lattice cover the cube's corners and edges.
    levels = torch.linspace(0, 1, 16)
    grid = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, 64, 64)
    if cs.input_channels == 4:
        grid = torch.cat([grid, torch.rand(1, 1, 64, 64)], dim=1)
    enc = cs.encode(grid)
    assert enc.shape == (1, cs.channels, 64, 64)
    assert enc.min() >= -1 - 1e-4 and enc.max() <= 1 + 1e-4, (enc.min(), enc.max())
    # and the space is used: every channel spans a good part of [-1, 1]
    span = enc.amax(dim=(0, 2, 3)) - enc.amin(dim=(0, 2, 3))
    assert (span > 0.9).all(), span


@pytest.mark.parametrize("name", COLORSPACE_NAMES)
def test_decode_shape_and_range_on_arbitrary_model_output(name: str) -> None:
    cs = get_colorspace(name)
    x = torch.empty(2, cs.channels, 8, 8).uniform_(-1.5, 1.5, generator=torch.Generator().manual_seed(1))
    out = cs.decode(x)
    assert out.shape == (2, 4 if name == "rgba" else 3, 8, 8)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


def test_known_values() -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    grey = torch.full((1, 3, 1, 1), 0.5)
    white = torch.ones(1, 3, 1, 1)
    flat = lambda t: t.flatten().tolist()  # noqa: E731
    assert flat(get_colorspace("hsv_polar").encode(red)) == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)
    assert flat(get_colorspace("hsv_polar").encode(grey)) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert flat(get_colorspace("hsv").encode(red)) == pytest.approx([-1.0, 1.0, 1.0], abs=1e-6)
    assert flat(get_colorspace("lab").encode(white)) == pytest.approx([1.0, 0.0, 0.0], abs=1e-3)
    assert flat(get_colorspace("ycbcr").encode(grey)) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert flat(get_colorspace("rgb").encode(grey)) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert flat(get_colorspace("gray").encode(white)) == pytest.approx([1.0], abs=1e-6)


def _hue_pixel(hue_turns: float) -> torch.Tensor:
    hsv = torch.tensor([hue_turns * 2 * math.pi, 1.0, 1.0]).reshape(1, 3, 1, 1)
    return KC.hsv_to_rgb(hsv)


def test_hsv_polar_has_no_hue_wrap_around() -> None:
    a, b = _hue_pixel(0.999), _hue_pixel(0.001)
    polar = get_colorspace("hsv_polar")
    assert (polar.encode(a) - polar.encode(b)).norm() < 0.02
    # while the linear HSV channel puts them at opposite ends
    linear = get_colorspace("hsv")
    assert (linear.encode(a) - linear.encode(b)).abs().max() > 1.9
    # both decode back to (almost) the same red
    torch.testing.assert_close(polar.decode(polar.encode(a)), a, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", COLORSPACE_NAMES)
def test_gradients_finite(name: str) -> None:
    cs = get_colorspace(name)
    rgb = special_pixels(cs.input_channels).requires_grad_(True)
    enc = cs.encode(rgb)
    (enc * torch.randn_like(enc)).sum().backward()
    assert torch.isfinite(rgb.grad).all(), rgb.grad

    # decode at encoded real colors (incl. the origin of hsv_polar for greys) and at arbitrary outputs
    z = torch.cat([enc.detach(), torch.zeros_like(enc[:, :, :1])], dim=2)
    z = torch.cat([z, torch.empty_like(z).uniform_(-1.2, 1.2)], dim=2).requires_grad_(True)
    out = cs.decode(z)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(z.grad).all(), z.grad
    assert z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", COLORSPACE_NAMES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_compute_in_fp32(name: str, dtype: torch.dtype) -> None:
    cs = get_colorspace(name)
    rgb = random_rgb(cs.input_channels)
    enc = cs.encode(rgb.to(dtype))
    assert enc.dtype == torch.float32
    torch.testing.assert_close(enc, cs.encode(rgb.to(dtype).float()))
    dec = cs.decode(enc.to(dtype))
    assert dec.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cs.encode(rgb).dtype == torch.float32
        assert cs.decode(enc).dtype == torch.float32


def test_wrong_channel_count_and_dtype_raise() -> None:
    with pytest.raises(ValueError, match="rgba"):
        get_colorspace("rgba").encode(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="gray"):
        get_colorspace("gray").decode(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="uint8"):
        get_colorspace("rgb").encode(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
