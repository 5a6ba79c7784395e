"""StyleGAN3's generator (src/modules/stylegan3/networks.py, filters.py) against Karras et al. 2021
("Alias-Free Generative Adversarial Networks") and NVlabs/stylegan3 ``training/networks_stylegan3.py``:
the filter schedule and the filters from their formulas, the published parameter counts, shapes for
every channel count and a non-square size, the input transform's equivariance, and the EMAs.
The output parity with NVIDIA's code is tests/parity/stylegan3_generator.py (docs/parity.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from src.modules.stylegan3.filters import (
    design_lowpass_filter,
    kaiser_attenuation,
    kaiser_beta,
    reference_resolution,
    synthesis_schedule,
)
from src.modules.stylegan3.networks import (
    STYLEGAN3_CONFIGS,
    StyleGAN3Generator,
    gamut_name,
    modulated_conv,
)
from src.nn.input_transform import user_transform
from src.nn.style_generator import StyleGenerator


def small(cfg: str = "t", resolution=(32, 32), img_channels: int = 3, num_classes: int = 0, **kwargs):
    """A narrow generator of config ``cfg`` (widths / 32 and / 16), z and w of 32."""
    arch = dict(STYLEGAN3_CONFIGS[cfg])
    arch["channel_base"] //= 32
    arch["channel_max"] //= 16
    arch.update(kwargs)
    torch.manual_seed(0)
    return StyleGAN3Generator(
        z_dim=32, w_dim=32, num_classes=num_classes, resolution=resolution, img_channels=img_channels, **arch
    ).eval()


# ------------------------------------------------------------------------------------------------
# the schedule (paper eq. 35-36; NVIDIA's SynthesisNetwork/SynthesisLayer constructors)


def test_schedule_formulas_t256():
    """Every layer's f_c, f_t, s, f_h from the paper's formulas (N = 14, N_crit = 2, f_c0 = 2,
    f_t0 = 2**2.1, f_t,N = f_c,N * 2**0.3), and the 256-px table (sizes, widths, factors, taps, pads)."""
    s = synthesis_schedule(256, num_fp16_res=4)
    for i in range(15):
        e = min(i / 12, 1)
        fc = 2 * (128 / 2) ** e
        ft = 2**2.1 * (128 * 2**0.3 / 2**2.1) ** e
        rate = 2 ** math.ceil(math.log2(min(2 * ft, 256)))
        assert s.cutoffs[i] == pytest.approx(fc, rel=1e-12)
        assert s.stopbands[i] == pytest.approx(ft, rel=1e-12)
        assert s.sampling_rates[i] == rate
        assert s.half_widths[i] == pytest.approx(max(ft, rate / 2) - fc, rel=1e-12)
    assert [round(float(f), 3) for f in s.cutoffs[[3, 9, 11]]] == [5.657, 45.255, 90.510]
    assert [round(float(f), 3) for f in s.stopbands[[0, 5, 12]]] == [4.287, 19.248, 157.586]
    sides = [36, 36, 36, 52, 52, 84, 84, 148, 148, 148, 276, 276, 276, 256, 256]
    assert s.sizes == [(n, n) for n in sides]
    assert s.channels == [512] * 9 + [362, 256, 181, 128, 128, 3]
    layers = s.layers
    assert [ly.tmp_sampling_rate for ly in layers] == [32] * 3 + [64] * 2 + [128] * 2 + [256] * 3 + [512] * 4 + [256]
    up_by_4 = {3, 5, 7, 10}
    for ly in layers[:14]:
        assert (ly.up_factor, ly.down_factor) == ((4, 2) if ly.index in up_by_4 else (2, 2))
        assert (ly.up_taps, ly.down_taps) == ((24, 12) if ly.index in up_by_4 else (12, 12))
        pads = (-6, -9) if ly.index in up_by_4 else (-11, -12) if ly.index == 13 else (9, 8)
        assert ly.padding == pads * 2
        assert ly.conv_kernel == 3 and not ly.down_radial
        assert ly.is_critically_sampled == (ly.index >= 12)
        assert ly.use_fp16 == (ly.index >= 3)  # s * 2**4 > 256
    torgb = layers[14]
    assert torgb.is_torgb and (torgb.up_factor, torgb.down_factor, torgb.up_taps, torgb.down_taps) == (1, 1, 1, 1)
    assert torgb.padding == (0, 0, 0, 0) and torgb.conv_kernel == 1
    assert [ly.name for ly in layers[:3]] == ["L0_36_512", "L1_36_512", "L2_36_512"]
    assert layers[13].name == "L13_256_128" and layers[14].name == "L14_256_3"


def test_schedule_r256_and_1024():
    r = synthesis_schedule(256, channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
    assert r.channels == [1024] * 9 + [724, 512, 362, 256, 256, 3]
    assert [ly.down_radial for ly in r.layers] == [True] * 12 + [False] * 3
    assert r.layers[0].padding == (11, 10, 11, 10) and r.layers[3].padding == (-2, -5, -2, -5)
    assert r.layers[13].padding == (-9, -10, -9, -10)
    sides = [36, 36, 52, 52, 84, 148, 148, 276, 276, 532, 1044, 1044, 1044, 1024, 1024]
    t = synthesis_schedule(1024)
    assert t.sizes == [(n, n) for n in sides]
    assert t.channels == [512] * 7 + [323, 203, 128, 81, 51, 32, 32, 3]
    r = synthesis_schedule(1024, channel_base=65536, channel_max=1024)
    assert r.channels == [1024] * 7 + [645, 406, 256, 161, 102, 64, 64, 3]


def test_non_square_schedule():
    """48x80: the schedule of R = 64 (the short side's power of two), one sampling rate for both axes,
    canvases = the image extent at each rate plus 10 samples a side, the last two layers 48x80."""
    assert reference_resolution(48, 80) == 64 and reference_resolution(256, 256) == 256
    assert reference_resolution(24, 24) == 32
    s, square = synthesis_schedule((48, 80)), synthesis_schedule(64)
    np.testing.assert_array_equal(s.sampling_rates, square.sampling_rates)
    np.testing.assert_array_equal(s.cutoffs, square.cutoffs)
    for i, rate in enumerate(s.sampling_rates[:13]):
        assert s.sizes[i] == (48 * rate / 64 + 20, 80 * rate / 64 + 20)
    assert s.sizes[13:] == [(48, 80), (48, 80)]
    for ly in s.layers:  # the padding formula per axis gives exactly the next canvas
        for axis, (lo, hi) in ((1, ly.padding[:2]), (0, ly.padding[2:])):
            k = ly.conv_kernel
            up_len = (ly.in_size[axis] + k - 1) * ly.up_factor + lo + hi - (ly.up_taps - 1) - (ly.down_taps - 1)
            assert (up_len + ly.down_factor - 1) // ly.down_factor == ly.out_size[axis]
    assert s.layers[13].name == "L13_48x80_512"
    with pytest.raises(ValueError, match="whole number of samples"):
        synthesis_schedule((37, 37))


# ------------------------------------------------------------------------------------------------
# filter design (paper App. C; scipy.signal.firwin as NVIDIA's design_lowpass_filter)


def test_kaiser_formulas():
    """Kaiser's attenuation and beta rules, against scipy and the T-256 test vectors (A 67.17 dB at L0,
    26.20 dB at L13)."""
    import scipy.signal

    s = synthesis_schedule(256)
    l0, l13 = s.layers[0], s.layers[13]
    a0 = kaiser_attenuation(12, 2 * l0.in_half_width / (l0.tmp_sampling_rate / 2))
    a13 = kaiser_attenuation(12, 2 * l13.out_half_width / (l13.tmp_sampling_rate / 2))
    assert a0 == pytest.approx(67.17, abs=0.01) and a13 == pytest.approx(26.20, abs=0.01)
    assert kaiser_beta(a0) == pytest.approx(6.4437, abs=1e-4) and kaiser_beta(a13) == pytest.approx(1.5401, abs=1e-4)
    for a in (10.0, 21.0, 35.5, 50.0, 80.0):
        assert kaiser_beta(a) == pytest.approx(scipy.signal.kaiser_beta(a), rel=1e-12)
    assert kaiser_attenuation(24, 0.3) == pytest.approx(scipy.signal.kaiser_atten(24, 0.3), rel=1e-12)


def test_separable_filter_is_kaiser_windowed_sinc():
    """firwin's filter = sinc at cutoff f_c times the Kaiser window of the attenuation rule, summing to 1;
    and NVIDIA's T-256 taps (L0's upsampling filter, L13's downsampling filter)."""
    s = synthesis_schedule(256)
    for ly in (s.layers[0], s.layers[3], s.layers[13]):
        n, fc, fs, width = ly.up_taps, ly.in_cutoff, ly.tmp_sampling_rate, 2 * ly.in_half_width
        f = design_lowpass_filter(n, fc, width, fs)
        assert f is not None and f.shape == (n,) and f.dtype == torch.float32
        m = np.arange(n) - (n - 1) / 2
        beta = kaiser_beta(kaiser_attenuation(n, width / (fs / 2)))
        expect = np.sinc(2 * fc / fs * m) * np.kaiser(n, beta)
        np.testing.assert_allclose(f.numpy(), expect / expect.sum(), atol=1e-7)
        assert float(f.double().sum()) == pytest.approx(1.0, abs=1e-6)
    l0, l13 = s.layers[0], s.layers[13]
    fu = design_lowpass_filter(12, l0.in_cutoff, 2 * l0.in_half_width, 32)
    fd = design_lowpass_filter(12, l13.out_cutoff, 2 * l13.out_half_width, 512)
    assert fu is not None and fd is not None
    half = [0.000792, 0.010018, 0.03895, 0.092413, 0.156526, 0.201302]
    np.testing.assert_allclose(fu.numpy(), half + half[::-1], atol=1e-6)
    half = [0.023375, 0.03445, -0.050881, -0.078616, 0.13961, 0.432061]
    np.testing.assert_allclose(fd.numpy(), half + half[::-1], atol=2e-6)
    assert design_lowpass_filter(1, 2.0, 1.0, 32) is None


def test_radial_filter_is_windowed_jinc():
    """R's downsampling filter: J1(2 pi f_c r) / (pi r) times the separable Kaiser window, sum 1,
    symmetric under every flip and transposition (a disc passband)."""
    import scipy.special

    n, fc, width, fs = 12, 5.0, 6.0, 32
    f = design_lowpass_filter(n, fc, width, fs, radial=True)
    assert f is not None and f.shape == (n, n)
    assert float(f.double().sum()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(f, f.t())
    torch.testing.assert_close(f, f.flip(0))
    torch.testing.assert_close(f, f.flip(1))
    x = (np.arange(n) - (n - 1) / 2) / fs
    r = np.hypot(x[:, None], x[None, :])
    window = np.kaiser(n, kaiser_beta(kaiser_attenuation(n, width / (fs / 2))))
    expect = scipy.special.j1(2 * np.pi * fc * r) / (np.pi * r) * np.outer(window, window)
    np.testing.assert_allclose(f.numpy(), expect / expect.sum(), atol=1e-7)


def test_generator_filters_sum_to_one():
    for cfg in ("t", "r"):
        G = small(cfg)
        count = 0
        for name, buf in G.named_buffers():
            if name.endswith(("up_filter", "down_filter")):
                assert float(buf.double().sum()) == pytest.approx(1.0, abs=1e-6), name
                count += 1
        assert count == 28  # 14 layers x (up, down); ToRGB has none
        radial = [ly.down_filter.ndim for ly in G.synthesis.typed_layers() if ly.down_filter is not None]
        assert radial == ([2] * 12 + [1] * 2 if cfg == "r" else [1] * 14)


# ------------------------------------------------------------------------------------------------
# NVIDIA's configs at 1024 px: parameter counts


def expected_params(channels: list[int], kernel: int, z_dim: int = 512, w_dim: int = 512) -> int:
    """Mapping (2 FC layers) + input (C0 x C0 mix, 4-output affine) + per layer: affine w_dim -> in,
    weight out x in x k x k (ToRGB 1x1), bias."""
    total = (z_dim * w_dim + w_dim) + (w_dim * w_dim + w_dim)
    total += channels[0] ** 2 + w_dim * 4 + 4
    for i, out in enumerate(channels):
        cin = channels[max(i - 1, 0)]
        k = 1 if i == len(channels) - 1 else kernel
        total += w_dim * cin + cin + out * cin * k * k + out
    return total


def test_parameter_counts_1024():
    """T-1024 22.3M (paper section 4), R-1024 from its widths (the paper's 15.8M matches R at
    256 px with channel base 2**15, also checked)."""
    t = StyleGAN3Generator(resolution=1024, **STYLEGAN3_CONFIGS["t"])
    n_t = sum(p.numel() for p in t.parameters())
    assert n_t == expected_params([512] * 7 + [323, 203, 128, 81, 51, 32, 32, 3], 3)
    assert round(n_t / 1e6, 1) == 22.3
    r = StyleGAN3Generator(resolution=1024, **STYLEGAN3_CONFIGS["r"])
    n_r = sum(p.numel() for p in r.parameters())
    assert n_r == expected_params([1024] * 7 + [645, 406, 256, 161, 102, 64, 64, 3], 1)
    r256 = StyleGAN3Generator(resolution=256, **{**STYLEGAN3_CONFIGS["r"], "channel_base": 32768})
    assert round(sum(p.numel() for p in r256.parameters()) / 1e6, 1) == 15.8
    assert isinstance(t, StyleGenerator) and t.num_ws == 16 and t.mapping.num_layers == 2


# ------------------------------------------------------------------------------------------------
# shapes, options


@pytest.mark.parametrize("img_channels", [1, 3, 4])
@pytest.mark.parametrize("cfg", ["t", "r"])
def test_shapes_every_channel_count(cfg, img_channels):
    G = small(cfg, img_channels=img_channels, num_classes=3)
    z = torch.randn(2, 32)
    c = torch.eye(3)[[0, 2]]
    with torch.no_grad():
        img = G(z, c)
    assert img.shape == (2, img_channels, 32, 32) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.std() > 0
    assert G.synthesis.layers[14].weight.shape == (img_channels, G.synthesis.schedule.channels[13], 1, 1)


def test_non_square_and_small_sizes():
    for size in [(48, 80), (24, 24), (80, 48)]:
        G = small("t", resolution=size, img_channels=1)
        with torch.no_grad():
            img = G(torch.randn(2, 32))
        assert img.shape == (2, 1, *size)
        assert G.synthesis.input.size == G.synthesis.schedule.sizes[0]
    with pytest.raises(ValueError, match="whole number"):
        small("t", resolution=(37, 37))


def test_noise_mode_ignored_fused_equal_and_truncation():
    G = small("t")
    z = torch.randn(2, 32)
    with torch.no_grad():
        a = G(z, noise_mode="random")
        torch.testing.assert_close(G(z, noise_mode="const"), a, rtol=0, atol=0)
        torch.testing.assert_close(G(z, noise_mode="none", fused=True), a, rtol=1e-5, atol=1e-5)
        G.mapping.w_avg.normal_()
        mean = G(z, psi=0.0)  # every sample is w_avg's image
        torch.testing.assert_close(mean, mean[:1].expand_as(mean), rtol=1e-5, atol=1e-6)
        ws = G.mapping(z, None, psi=0.7)
        torch.testing.assert_close(G(z, psi=0.7), G.synthesis(ws), rtol=0, atol=0)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="bogus")
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.zeros(1, 15, 32))


@pytest.mark.parametrize(("cfg", "layout"), [("t", torch.contiguous_format), ("r", torch.channels_last)])
def test_layers_see_the_layout_their_convolution_runs_fastest_in(cfg, layout):
    """T's padded 3x3 convolutions get contiguous activations (oneDNN's channels-last backward of them
    is up to 3.5x slower on the CPU, docs/benchmarks.md), R's 1x1 ones channels-last; the other layout
    computes the same image and gradients (a speed choice only)."""
    G = small(cfg)
    seen = []
    for layer in G.synthesis.layers:
        layer.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(memory_format=layout)))
    ws = G.mapping(torch.randn(2, 32), None).detach().requires_grad_()
    image = G.synthesis(ws)
    assert len(seen) == len(G.synthesis.layers) and all(seen)
    (grad,) = torch.autograd.grad(image.square().sum(), ws)
    other = torch.channels_last if layout == torch.contiguous_format else torch.contiguous_format
    G.synthesis.layout = other
    seen.clear()
    image2 = G.synthesis(ws)
    assert len(seen) == len(G.synthesis.layers) and not any(seen)  # the layers now see the other one
    (grad2,) = torch.autograd.grad(image2.square().sum(), ws)
    torch.testing.assert_close(image2, image, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad2, grad, rtol=1e-4, atol=1e-5 * float(grad.abs().max()))  # summation order


def test_modulated_conv_matches_per_sample_weights():
    """Both paths = NVIDIA's per-sample weights: w / rms(w), s / rms(s over the batch), demodulated,
    times the input gain; padding k - 1 grows the output by k - 1."""
    torch.manual_seed(1)
    x, weight, styles = torch.randn(2, 5, 8, 8), torch.randn(4, 5, 3, 3), torch.randn(2, 5)
    gain = torch.tensor(0.7)
    wn = weight / weight.square().mean(dim=[1, 2, 3], keepdim=True).sqrt()
    sn = styles / styles.square().mean().sqrt()
    for i in range(2):
        wi = wn * sn[i].reshape(1, 5, 1, 1)
        wi = wi / (wi.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt() * gain
        expect = torch.nn.functional.conv2d(x[i : i + 1], wi, padding=2)
        for fused in (False, True):
            y = modulated_conv(x, weight, styles, padding=2, input_gain=gain, fused=fused)
            assert y.shape == (2, 4, 10, 10)
            torch.testing.assert_close(y[i : i + 1], expect, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# the input transform (translate/rotate) and equivariance


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_integer_translation_translates_the_image(cfg):
    """Translating the input by k/R units shifts the image by k pixels (paper section 3: EQ-T holds by
    construction up to the borders); compared away from the borders, loosely, and against the change
    the shift makes."""
    G = small(cfg)
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, 32), None)
        ref = G.synthesis(ws)
        for k, (tx, ty) in [(2, (2 / 32, 0.0)), (3, (0.0, 3 / 32))]:
            G.synthesis.input.transform.copy_(user_transform((tx, ty)))
            moved = G.synthesis(ws)
            if tx:
                diff, unmoved = moved[..., :, k:] - ref[..., :, :-k], moved - ref
            else:
                diff, unmoved = moved[..., k:, :] - ref[..., :-k, :], moved - ref
            err = diff[..., 6:-6, 6:-6].square().mean() / ref.var()
            change = unmoved[..., 6:-6, 6:-6].square().mean() / ref.var()  # the transform does move the image
            assert err < 1e-3 and err < 0.01 * change, (k, float(err), float(change))
        G.synthesis.input.transform.copy_(user_transform())
        torch.testing.assert_close(G.synthesis(ws), ref, rtol=0, atol=0)


def test_r_is_equivariant_to_quarter_turns_t_is_not():
    """R (1x1 convolutions, radial and separable symmetric filters, symmetric sample grid) is exactly
    equivariant to 90-degree rotations; T's 3x3 kernels are not."""
    errors = {}
    for cfg in ("t", "r"):
        G = small(cfg)
        with torch.no_grad():
            ws = G.mapping(torch.randn(2, 32), None)
            ref = G.synthesis(ws)
            G.synthesis.input.transform.copy_(user_transform(rotate=90.0))
            turned = G.synthesis(ws)
        errors[cfg] = float((turned - torch.rot90(ref, 1, dims=(2, 3))).square().mean() / ref.var())
    assert errors["r"] < 1e-8 and errors["t"] > 1e-2, errors


# ------------------------------------------------------------------------------------------------
# EMAs


def test_magnitude_ema_and_w_avg_update_only_when_asked():
    G = small("t", magnitude_ema_beta=0.9)
    z = torch.randn(4, 32)
    emas = [ly.magnitude_ema.clone() for ly in G.synthesis.typed_layers()]
    w_avg = G.mapping.w_avg.clone()
    with torch.no_grad():
        G(z)
        G.synthesis(G.mapping(z, None))
    assert all(torch.equal(e, ly.magnitude_ema) for e, ly in zip(emas, G.synthesis.typed_layers()))
    assert torch.equal(w_avg, G.mapping.w_avg)
    with torch.no_grad():
        ws = G.mapping(z, None)
        x0 = G.synthesis.input(ws[:, 0])
        G(z, update_emas=True)
    layer0 = G.synthesis.layers[0]
    expect = 0.1 * x0.square().mean() + 0.9 * 1.0  # lerp(mean(x^2), ema 1, beta 0.9)
    torch.testing.assert_close(layer0.magnitude_ema, expect, rtol=1e-6, atol=0)
    assert all(not torch.equal(e, ly.magnitude_ema) for e, ly in zip(emas, G.synthesis.typed_layers()))
    torch.testing.assert_close(G.mapping.w_avg, ws[:, 0].mean(0).lerp(w_avg, 0.998))
    assert G.synthesis.layers[0].magnitude_ema.shape == ()


def test_gamut_name_maps_nvidia_names():
    assert gamut_name("mapping.fc1.weight") == "mapping.layers.1.weight"
    assert gamut_name("mapping.embed.bias") == "mapping.embed.bias"
    assert gamut_name("mapping.w_avg") == "mapping.w_avg"
    assert gamut_name("synthesis.input.freqs") == "synthesis.input.freqs"
    assert gamut_name("synthesis.L13_256_128.affine.weight") == "synthesis.layers.13.affine.weight"
    assert gamut_name("synthesis.L0_36_512.down_filter") == "synthesis.layers.0.down_filter"
    G = small("r", num_classes=2)
    names = set(G.state_dict())
    assert {"synthesis.layers.0.up_filter", "synthesis.layers.14.magnitude_ema", "mapping.embed.weight"} <= names
    assert "synthesis.layers.14.up_filter" not in names  # None buffers are absent, as in NVIDIA's state dict
