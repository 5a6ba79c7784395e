"""StyleGAN2 networks against NVIDIA's networks.py: shapes, w plan, parameter counts, layer math."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from src.modules.stylegan2.discriminator import Discriminator, MinibatchStdLayer
from src.modules.stylegan2.generator import Generator, MappingNetwork
from src.nn.layers import make_fir, modulated_conv2d, upsample2d


def nparams(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("res,num_ws", [(4, 2), (8, 4), (32, 8), (64, 10), (128, 12), (256, 14)])
def test_num_ws(res, num_ws):
    g = Generator(z_dim=8, w_dim=8, resolution=(res, res), channel_base=2048, channel_max=8, map_depth=1)
    assert g.num_ws == num_ws
    # every w index is consumed, each by the right layers (ToRGB shares the next conv's w)
    idx = [i for _, i in g.synthesis.layer_ws()]
    assert sorted(set(idx)) == list(range(num_ws))


# counted from NVIDIA's layer formulas (and the config-F totals at 1024: G 30,370,060 / D 29,012,513)
@pytest.mark.parametrize(
    "res,base,depth,g_params,d_params",
    [
        (64, 16384, 2, 22_243_608, 23_407_361),
        (64, 16384, 8, 23_819_544, 23_407_361),
        (64, 32768, 2, 25_456_664, 26_488_833),
        (256, 16384, 8, 24_767_458, 24_001_089),
        (256, 32768, 8, 30_034_338, 28_864_129),
    ],
)
def test_parameter_counts(res, base, depth, g_params, d_params):
    with torch.device("meta"):
        g = Generator(resolution=(res, res), channel_base=base, map_depth=depth)
        d = Discriminator(resolution=(res, res), channel_base=base)
    assert nparams(g) == g_params
    assert nparams(d) == d_params
    assert round(g_params / 1e6, 2) in (22.24, 23.82, 25.46, 24.77, 30.03)


def test_config_f_1024_totals():
    with torch.device("meta"):
        g = Generator(resolution=(1024, 1024), channel_base=32768, map_depth=8)
        d = Discriminator(resolution=(1024, 1024), channel_base=32768)
    assert (nparams(g), nparams(d)) == (30_370_060, 29_012_513)


def test_channel_plan_256():
    g = Generator(resolution=(256, 256), channel_base=16384, map_depth=1, z_dim=8, w_dim=8, channel_max=512)
    chans = [b.out_channels for b in g.synthesis.blocks]
    assert chans == [512, 512, 512, 512, 256, 128, 64]  # channel_base 16384


@pytest.mark.parametrize("resolution,channels", [((16, 16), 3), ((16, 32), 1), ((32, 16), 4), ((8, 32), 3)])
def test_generator_discriminator_shapes(resolution, channels):
    g = Generator(
        z_dim=8, w_dim=8, resolution=resolution, img_channels=channels, channel_base=64, channel_max=8, map_depth=1
    )
    d = Discriminator(resolution=resolution, img_channels=channels, channel_base=64, channel_max=8, mbstd_group=2)
    img = g(torch.randn(4, 8))
    assert img.shape == (4, channels, *resolution)
    assert d(img).shape == (4, 1)
    # the constant is 4 on the short side and keeps the aspect ratio
    h0, w0 = g.synthesis.blocks[0].const.shape[1:]
    assert min(h0, w0) == 4 and h0 * resolution[1] == w0 * resolution[0]


def test_discriminator_rejects_wrong_shape():
    d = Discriminator(resolution=(16, 16), img_channels=3, channel_base=64, channel_max=8, mbstd_group=2)
    with pytest.raises(ValueError, match=r"\[N, 3, 16, 16\]"):
        d(torch.randn(2, 1, 16, 16))


def test_conditional_models():
    g = Generator(z_dim=8, w_dim=8, num_classes=5, resolution=(8, 8), channel_base=32, channel_max=8, map_depth=1)
    d = Discriminator(resolution=(8, 8), num_classes=5, channel_base=32, channel_max=8, mbstd_group=2)
    c = F.one_hot(torch.tensor([0, 1, 2, 3]), 5).float()
    assert d(g(torch.randn(4, 8), c), c).shape == (4, 1)
    with pytest.raises(ValueError, match="conditional"):
        g(torch.randn(4, 8))


def test_modulated_conv_fused_equals_unfused():
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 5, 8, 8), torch.randn(7, 5, 3, 3), torch.randn(3, 5)
    fir = make_fir()
    for up in (1, 2):
        for demod in (True, False):
            a = modulated_conv2d(x, w, s, up=up, demodulate=demod, fir=fir, fused=False)
            b = modulated_conv2d(x, w, s, up=up, demodulate=demod, fir=fir, fused=True)
            assert a.shape == (3, 7, 8 * up, 8 * up)
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_demodulation_formula():
    """Each output channel has the per-sample weight norm 1: w'' = w*s / sqrt(sum (w*s)^2 + 1e-8)."""
    torch.manual_seed(1)
    w, s = torch.randn(4, 3, 3, 3), torch.randn(2, 3)
    x = torch.zeros(2, 3, 5, 5)
    x[:, :, 2, 2] = 1.0  # an impulse per input channel reads the kernel back
    out = modulated_conv2d(x.clone(), w, s)
    ref = []
    for n in range(2):
        wn = w * s[n].reshape(1, 3, 1, 1)
        wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        ref.append(F.conv2d(x[n : n + 1], wn, padding=1))
    torch.testing.assert_close(out, torch.cat(ref), atol=1e-5, rtol=1e-5)


def test_fir_upsample_keeps_constant_images():
    x = torch.full((1, 2, 8, 8), 3.0)
    y = upsample2d(x, make_fir())
    assert y.shape == (1, 2, 16, 16)
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.full_like(y[:, :, 2:-2, 2:-2], 3.0))


def test_minibatch_std_value():
    x = torch.randn(8, 6, 4, 4)
    y = MinibatchStdLayer(group_size=4, num_channels=1)(x)
    assert y.shape == (8, 7, 4, 4)
    # sample i is grouped with i + 2, i + 4, i + 6 (group members are strided by N / G)
    grp = x[[1, 3, 5, 7]]
    expected = (grp.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[1, 6, 0, 0], expected)
    torch.testing.assert_close(y[7, 6], y[1, 6])


def test_mapping_truncation_and_w_avg():
    m = MappingNetwork(z_dim=8, w_dim=8, num_ws=4, num_layers=2)
    z = torch.randn(16, 8)
    m(z, update_w_avg=True)
    w_avg = m.w_avg.clone()
    assert w_avg.abs().sum() > 0
    ws = m(z)
    ws_t = m(z, psi=0.5, cutoff=2)
    torch.testing.assert_close(ws_t[:, :2], w_avg.lerp(ws[:, :2], 0.5))
    torch.testing.assert_close(ws_t[:, 2:], ws[:, 2:])
    torch.testing.assert_close(m(z, psi=0.0)[:, 0], w_avg.expand(16, 8))


def test_equalized_lr_runtime_scale():
    from src.nn.layers import FullyConnected

    fc = FullyConnected(64, 32, lr_multiplier=0.01)
    # stored weights ~ N(0, 1/lr^2); the runtime gain lr/sqrt(fan_in) brings them back to N(0, 1/fan_in)
    assert fc.weight_gain == pytest.approx(0.01 / math.sqrt(64))
    eff = fc.weight * fc.weight_gain
    assert eff.std().item() == pytest.approx(1 / math.sqrt(64), rel=0.15)
