"""The equivariance metrics EQ-T, EQ-T_frac, EQ-R (Karras et al. 2021, appendix E; NVlabs/stylegan3
``metrics/equivariance.py``): the image operators against analytic expectations (a shifted image, a
shifted band-limited sinusoid, rotated Gaussian blobs), PSNR with NVIDIA's normalisation, the masks, the
sign conventions against StyleGAN3's input transform, the names, and the metric through ``MetricSuite``
and ``src.eval``, with the refusal of generators that take no input transform.

tests/parity/equivariance.py compares all of it with NVIDIA's code (docs/parity.md).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from src.metrics import equivariance as eq
from src.metrics.protocols import higher_is_better, parse_metrics
from src.metrics.suite import MetricSuite, flatten
from src.modules.stylegan3.networks import STYLEGAN3_CONFIGS, StyleGAN3Generator
from src.nn.style_generator import StyleSynthesis

H, W = 40, 48
ROWS = torch.arange(H, dtype=torch.float64)[:, None]
COLS = torch.arange(W, dtype=torch.float64)[None]


def wave(dx: float = 0.0, dy: float = 0.0, fx: float = 0.07, fy: float = -0.045) -> torch.Tensor:
    """A band-limited sinusoid moved by (dx, dy) pixels, sampled analytically: [1, 1, H, W]."""
    return torch.cos(2 * math.pi * (fx * (COLS - dx) + fy * (ROWS - dy)) + 0.3).float()[None, None]


def blob(cx: float, cy: float, sigma: float = 3.0) -> torch.Tensor:
    """A Gaussian centred (cx, cy) pixels from the image centre (x right, y down): [1, 1, H, W]."""
    x, y = COLS + 0.5 - W / 2, ROWS + 0.5 - H / 2
    return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).float()[None, None]


def masked_max(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(((a - b).abs() * mask).max())


# ------------------------------------------------------------------------------------------------
# the operators


def test_integer_translation_moves_pixels_and_masks_the_uncovered_border():
    x = torch.arange(2 * 3 * H * W, dtype=torch.float32).reshape(2, 3, H, W)
    z, m = eq.integer_translation(x, 5, -2)
    assert torch.equal(z[:, :, : H - 2, 5:], x[:, :, 2:, : W - 5])  # out[y, x] = in[y + 2, x - 5]
    expected = torch.zeros(H, W)
    expected[: H - 2, 5:] = 1
    assert torch.equal(m, expected.expand_as(x)) and float((z * (1 - m)).abs().sum()) == 0
    z, m = eq.integer_translation(x, W, 0)  # moved out entirely
    assert float(z.abs().sum()) == 0 and float(m.sum()) == 0


def test_fractional_translation_of_a_sinusoid_is_the_shifted_sinusoid():
    z, m = eq.fractional_translation(wave(), 2.3, -1.7)
    assert masked_max(z, wave(2.3, -1.7), m) < 3e-3  # Lanczos-3 at 0.07 cycles/px
    z, m = eq.fractional_translation(wave(), -4.0, 3.0)  # a whole-pixel shift is exact (one tap of weight 1)
    zi, mi = eq.integer_translation(wave(), -4, 3)
    assert masked_max(z, zi, m) < 1e-6 and bool((m <= mi).all())


def test_fractional_mask_keeps_the_pixels_whose_six_taps_lie_inside():
    dx, dy, a = 2.3, -1.7, 3
    _, m = eq.fractional_translation(torch.zeros(1, 2, H, W), dx, dy, a=a)

    def inside(n: int, shift: float) -> torch.Tensor:  # out[q] reads in[q - floor(shift) - k], k = -2..3
        taps = [[q - math.floor(shift) - k for k in range(-(a - 1), a + 1)] for q in range(n)]
        return torch.tensor([all(0 <= t < n for t in row) for row in taps], dtype=torch.float32)

    assert torch.equal(m[0, 0], inside(H, dy)[:, None] * inside(W, dx)[None])
    assert torch.equal(m[0, 0], m[0, 1])


def test_rotation_of_a_radial_blob_is_nearly_invariant():
    x = blob(0, 0)
    for angle in (0.3, 1.0, 2.5, -2.0):
        z, m = eq.fractional_rotation(x, angle)
        assert float(m.sum()) > 0.4 * H * W
        assert masked_max(z, x, m) < 3e-3


def test_rotation_direction_matches_rotation_matrix():
    """``rotation_matrix(a)`` maps (x, y) to (x cos a + y sin a, -x sin a + y cos a): a quarter turn moves a
    blob right of the centre to above it (y down), as NVIDIA's operator and StyleGAN3's transform do."""
    z, m = eq.fractional_rotation(blob(8, 0), math.pi / 2)
    assert masked_max(z, blob(0, -8), m) < 1e-4
    assert masked_max(z, blob(0, 8), m) > 0.5


def test_pseudo_rotation_only_filters():
    f = eq.bandlimit_filter(torch.eye(3), up=1, amax=6)  # sinc at integers with cutoff 1: a unit impulse
    impulse = torch.zeros(11, 11)
    impulse[5, 5] = 1
    assert f.shape == (11, 11) and float((f - impulse).abs().max()) < 1e-6
    y, m = eq.fractional_pseudo_rotation(blob(5, 3), 0.8)
    assert masked_max(y, blob(5, 3), m) < 2e-3  # a smooth image keeps its place
    edge = torch.zeros(H, W)
    edge[5:-5, 5:-5] = 1
    assert torch.equal(m[0, 0], edge)


def test_bandlimit_filter_phases_each_sum_to_one():
    f = eq.bandlimit_filter(eq.rotation_matrix(0.4), a=3, amax=6, up=4)
    assert f.shape == (47, 47)
    sums = torch.stack([f[r::4, s::4].sum() for r in range(4) for s in range(4)])
    assert torch.allclose(sums * 16, torch.ones(16), atol=1e-5)


def test_psnr_uses_a_peak_of_two():
    meter = eq.EquivarianceError()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    mask = torch.zeros_like(x)
    mask[..., 2:6, 2:6] = 1
    meter.update(x, x + 0.1 * mask + 5 * (1 - mask), mask)  # errors outside the mask do not count
    assert float(meter.compute()) == pytest.approx(20 * math.log10(2) - 10 * math.log10(0.01), abs=1e-5)
    assert eq.psnr_db(0.0, 10.0) == math.inf
    same = eq.EquivarianceError()
    same.update(x, x, mask)
    assert float(same.compute()) == math.inf


# ------------------------------------------------------------------------------------------------
# the generator side


@functools.cache
def small(cfg: str, resolution: int = 32) -> StyleGAN3Generator:
    """A narrow generator of config ``cfg`` (shared: the tests leave its transform as they found it)."""
    arch = dict(STYLEGAN3_CONFIGS[cfg])
    arch["channel_base"] //= 32
    arch["channel_max"] //= 16
    torch.manual_seed(0)
    return StyleGAN3Generator(z_dim=32, w_dim=32, resolution=resolution, **arch).eval()


def pair_psnrs(G: StyleGAN3Generator, transform: str, value: torch.Tensor) -> tuple[float, float]:
    """PSNR of G's image for the input transformed by ``value`` against its identity image transformed by
    the image operator with ``value`` (right) and with ``-value`` (wrong sign)."""
    syn, unit = G.synthesis, G.synthesis.input_transform_unit()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, 32, generator=torch.Generator().manual_seed(1)), None)

        def synthesize(matrix: torch.Tensor) -> torch.Tensor:
            with syn.input_transform(matrix):
                return syn(ws, noise_mode="const")

        orig = synthesize(torch.eye(3))
        ref, img, mask = eq.transformed_pair(synthesize, orig, transform, value, unit)
        wrong_ref, wrong_img, wrong_mask = eq.transformed_pair(lambda m: img, orig, transform, -value, unit)
    right = eq.psnr_db(((ref - img).square() * mask).sum(), mask.sum())
    return right, eq.psnr_db(((wrong_ref - wrong_img).square() * wrong_mask).sum(), wrong_mask.sum())


def test_input_transform_is_set_for_the_block_and_restored():
    G = small("t", 16)
    before = G.synthesis.input.transform.clone()
    m = eq.rotation_matrix(0.5)
    with G.synthesis.input_transform(m):
        assert torch.equal(G.synthesis.input.transform, m)
    assert torch.equal(G.synthesis.input.transform, before)
    with pytest.raises(RuntimeError), G.synthesis.input_transform(m):
        raise RuntimeError("inside")
    assert torch.equal(G.synthesis.input.transform, before)
    assert G.synthesis.supports_input_transform and G.synthesis.input_transform_unit() == 16
    assert not StyleSynthesis.supports_input_transform
    with pytest.raises(NotImplementedError, match="takes no input transform"):
        StyleSynthesis().input_transform(m)


@pytest.mark.parametrize(
    "cfg, transform, value",
    [
        ("t", "int", torch.tensor([3 / 32, -2 / 32])),
        ("t", "frac", torch.tensor([0.1, -0.07])),
        ("r", "int", torch.tensor([3 / 32, -2 / 32])),
        ("r", "rot", torch.tensor(0.6)),
    ],
)
def test_image_operators_agree_with_the_generators_transform(cfg, transform, value):
    """The operator's direction is the generator's: the right sign scores far above the wrong one."""
    right, wrong = pair_psnrs(small(cfg), transform, value)
    assert right > wrong + 20


def test_config_r_is_rotation_equivariant_t_is_not():
    """The paper's Table 2: EQ-R is high for config R and low for T (already at initialisation here)."""
    angle = torch.tensor(0.6)
    assert pair_psnrs(small("r"), "rot", angle)[0] > pair_psnrs(small("t"), "rot", angle)[0] + 20


# ------------------------------------------------------------------------------------------------
# names and the front end


def test_names_protocols_and_direction():
    ps = parse_metrics(["eqt50k_int", "eqt50k_frac", "eqr50k", "eqt10k_int", "eqr500"])
    assert [(p.kind, p.num_samples) for p in ps] == [
        ("eq", 50000),
        ("eq", 50000),
        ("eq", 50000),
        ("eq", 10000),
        ("eq", 500),
    ]
    assert all(not p.needs_reals and p.result_keys() == [p.name] for p in ps)
    assert higher_is_better("eqr50k") and higher_is_better("metrics/eqt50k_frac")
    for bad in ("eqt50k", "eqr50k_int", "eqt0_frac"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse_metrics([bad])


TINY3 = dict(resolution=16, z_dim=8, w_dim=8, channel_base=256, channel_max=16, mbstd_group=2, check_finite_every=0)


def test_metric_suite_measures_a_stylegan3_module(tmp_path):
    from src.modules.stylegan3.module import StyleGAN3

    torch.manual_seed(0)
    module = StyleGAN3(**TINY3)
    before = module.G_ema.synthesis.input.transform.clone()
    results = MetricSuite(["eqt6_int", "eqt4_frac", "eqr4"], weights_dir=tmp_path, seed=3).run(module)
    flat = flatten(results)
    assert set(flat) == {"eqt6_int", "eqt4_frac", "eqr4"} and all(math.isfinite(v) and v > 0 for v in flat.values())
    again = flatten(MetricSuite(["eqt4_frac"], weights_dir=tmp_path, seed=3).run(module))
    other = flatten(MetricSuite(["eqt4_frac"], weights_dir=tmp_path, seed=4).run(module))
    assert again["eqt4_frac"] == flat["eqt4_frac"] != other["eqt4_frac"]
    assert results["eqt6_int"]["protocol"]["num_samples"] == 8  # whole batches of 4, as NVIDIA's loop
    assert results["eqr4"]["protocol"]["rotate_max"] == 1.0 and results["eqr4"]["protocol"]["batch_size"] == 4
    assert torch.equal(module.G_ema.synthesis.input.transform, before)


def test_generators_without_an_input_transform_are_refused_in_one_line(tmp_path):
    from src.modules.chromagan.module import ChromaGAN
    from src.modules.stylegan2.module import StyleGAN2

    suite = MetricSuite(["eqt50k_int", "fid"], weights_dir=tmp_path)
    with pytest.raises(
        ValueError, match=r"^eqt50k_int: StyleGAN2's generator \(SynthesisNetwork\) starts from a learned constant"
    ) as e:
        suite.run(StyleGAN2(**{k: v for k, v in TINY3.items()}))
    assert "\n" not in str(e.value)
    chroma = ChromaGAN(
        resolution=32, num_classes=3, width=0.125, trunk_pretrained=False, global_fc=(8, 4), class_fc=(8,)
    )
    with pytest.raises(ValueError, match="^eqr50k: ChromaGAN does not generate images from latents"):
        MetricSuite(["eqr50k"], weights_dir=tmp_path).check_module(chroma)


def test_eval_refuses_a_stylegan2_checkpoint_before_any_work(tmp_path_factory, weights_dir):
    from src.eval import evaluate
    from src.utils.validation import ConfigError
    from tests.conftest import tiny_run
    from tests.test_eval import eval_cfg

    run = tiny_run(tmp_path_factory.mktemp("logs"), "eq", steps=1)
    with pytest.raises(ConfigError, match="eqr50k: StyleGAN2's generator .* cannot be translated or rotated"):
        evaluate(eval_cfg(run, weights_dir, "metrics=[eqr50k]"))
