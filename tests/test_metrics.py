"""Metric formulas and modules: FID, KID, PPL, LPIPS, quantization, weights lookup, feature cache."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from src.colorspaces import get_colorspace
from src.datamodules.dataset import BaseImageDataset
from src.metrics import cache as feature_cache
from src.metrics.formulas import fid_from_features, kid_from_features
from src.metrics.generated import num_real_images, quantize, real_images, to_display_rgb
from src.metrics.inception import FeatureBank, InceptionFeatures
from src.metrics.lpips import LPIPS, _load_heads, heads_file
from src.metrics.ppl import (
    PerceptualPathLength,
    crop_face,
    downsample_factor,
    downsample_to_256,
    path_distances,
    percentile_filtered_mean,
    ppl_metrics,
    ppl_rgb,
    result_key,
    slerp,
)
from src.metrics.protocols import parse_metrics
from src.metrics.suite import check_weights
from src.pretrained.weights import WEIGHTS, MissingWeightsError, load_weights


class TinyExtractor(nn.Module):
    """A random 2-conv feature extractor: float images [N, 3, H, W] -> [N, 8]."""

    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )

    def forward(self, x):
        return self.net(x)


def features(images: torch.Tensor) -> torch.Tensor:
    bank = FeatureBank(TinyExtractor())
    for chunk in images.split(16):
        bank.update(chunk)
    return bank.compute()


@pytest.fixture(scope="module")
def image_sets():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 12, 12, generator=g)
    return x, x + 0.5  # the second set: every pixel shifted


# ------------------------------------------------------------------------------------------------
# FID / KID


def _fid_reference(a: torch.Tensor, b: torch.Tensor, ddof: int = 0) -> float:
    """FID by another route than scipy's sqrtm: Tr sqrtm(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)),
    with NVIDIA's maximum-likelihood covariance (divided by N: ``ddof=0``) unless told."""
    a, b = a.double(), b.double()
    s1, s2 = torch.cov(a.T, correction=ddof), torch.cov(b.T, correction=ddof)
    val, vec = torch.linalg.eigh(s1)
    root1 = vec @ torch.diag(val.clamp_min(0).sqrt()) @ vec.T
    trace_sqrt = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    return float((a.mean(0) - b.mean(0)).square().sum() + torch.trace(s1 + s2) - 2 * trace_sqrt)


def test_fid_of_identical_sets_is_zero_and_of_shifted_sets_positive(image_sets):
    x, shifted = image_sets
    fx, fs = features(x), features(shifted)
    assert fx.shape == (64, 8)
    assert abs(fid_from_features(fx, fx.clone())) < 1e-4
    fid = fid_from_features(fx, fs)
    assert fid > 1e-3
    assert fid == pytest.approx(_fid_reference(fx, fs), rel=1e-6)


def test_fid_divides_the_covariance_by_n_as_nvidia():
    """NVIDIA's FeatureStats.get_mean_cov divides the covariance by N, not N - 1: on 6 samples the
    two differ by 20%, and only the first matches."""
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(6, 3, generator=g), 2 * torch.randn(6, 3, generator=g) + 1
    fid = fid_from_features(real, fake)
    assert fid == pytest.approx(_fid_reference(real, fake, ddof=0), rel=1e-6)
    assert fid != pytest.approx(_fid_reference(real, fake, ddof=1), rel=1e-3)


def test_fid_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 generated"):
        fid_from_features(torch.randn(5, 4), torch.randn(1, 4))


def _kid_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    d, m = a.shape[1], a.shape[0]
    kxx, kyy, kxy = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    off = lambda k: (k.sum() - k.diagonal().sum()) / (m * (m - 1))  # noqa: E731
    return float(off(kxx) + off(kyy) - 2 * kxy.mean())


def test_kid_matches_the_unbiased_cubic_mmd_and_separates_sets(image_sets):
    x, shifted = image_sets
    fx, fs = features(x), features(shifted)
    # one subset of all samples: a permutation of the whole sets, so the estimate is deterministic
    mean, std, m = kid_from_features(fx, fs, subsets=1, max_subset_size=1000)
    assert m == 64 and std == 0.0
    # float32 arithmetic, as NVIDIA's: the three kernel sums nearly cancel, so ~1e-4 of the float64 value
    assert mean == pytest.approx(_kid_reference(fx, fs), rel=1e-3)
    same, _, _ = kid_from_features(fx, fx.clone(), subsets=20, max_subset_size=32)
    shifted_kid, _, _ = kid_from_features(fx, fs, subsets=20, max_subset_size=32)
    assert shifted_kid > 0 and abs(same) < 0.05 * shifted_kid


def test_kid_is_reproducible_and_leaves_the_global_rng_alone(image_sets):
    fx, fs = features(image_sets[0]), features(image_sets[1])
    torch.manual_seed(123)
    np.random.seed(5)
    before, np_before = torch.get_rng_state(), np.random.get_state()[1].copy()
    a = kid_from_features(fx, fs, subsets=5, max_subset_size=16, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_before)
    assert kid_from_features(fx, fs, subsets=5, max_subset_size=16, seed=7) == a


def test_kid_draws_nvidias_subsets_in_float32(image_sets):
    """stylegan2-ada-pytorch metrics/kernel_inception_distance.py: per subset, m generated rows then
    m real rows from numpy's global state (seeded here as NVIDIA's caller would), float32 arrays."""
    fx, fs = features(image_sets[0]), features(image_sets[1])
    real, gen = fx.numpy().astype(np.float32), fs.numpy().astype(np.float32)
    n, m, subsets = real.shape[1], 16, 4
    np.random.seed(11)
    t = 0.0
    for _ in range(subsets):
        x = gen[np.random.choice(gen.shape[0], m, replace=False)]
        y = real[np.random.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    reference = t / subsets / m
    mean, _, size = kid_from_features(fx, fs, subsets=subsets, max_subset_size=m, seed=11)
    assert size == m
    assert mean == pytest.approx(float(reference), rel=1e-6, abs=1e-9)


# ------------------------------------------------------------------------------------------------
# quantization and image sources


def test_quantize_is_nvidias_rule_and_repeats_gray():
    x = torch.linspace(-1.2, 1.2, 2001)  # model scale, beyond the range on both sides
    expected = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    got = quantize(((x + 1) / 2).reshape(1, 1, 1, -1).repeat(1, 3, 1, 1))
    assert torch.equal(got[0, 0, 0], expected)
    gray = quantize(torch.rand(2, 1, 4, 4))
    assert gray.shape == (2, 3, 4, 4) and torch.equal(gray[:, 0], gray[:, 2])
    assert quantize(torch.rand(2, 4, 4, 4)).shape == (2, 3, 4, 4)  # alpha dropped


def test_rgb_reals_keep_their_bytes_through_the_color_space():
    values = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).repeat(2, 3, 1, 1)
    dataset = [{"image": v} for v in values]
    out = torch.cat([x for _, x, _ in real_images(dataset, get_colorspace("rgb"), 2, batch_size=2)])
    assert torch.equal(out, values)
    gray = torch.cat([x for _, x, _ in real_images(dataset, get_colorspace("gray"), 2, batch_size=2)])
    assert gray.shape == (2, 3, 16, 16) and torch.equal(gray[:, 0], gray[:, 1])


def test_the_mirror_protocol_doubles_the_reals_with_their_flips():
    """NVIDIA's --mirror=1 order: the N originals, then the same N flipped left-right."""
    images = torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8)
    dataset = [{"image": v, "label": torch.tensor(i)} for i, v in enumerate(images)]
    assert num_real_images(dataset, None, mirror=True) == 6 and num_real_images(dataset, None) == 3
    assert num_real_images(dataset, 4, mirror=True) == 4 and num_real_images(dataset, 50, mirror=True) == 6
    batches = list(real_images(dataset, get_colorspace("rgb"), 6, batch_size=4, mirror=True))
    index = torch.cat([i for i, _, _ in batches])
    out = torch.cat([x for _, x, _ in batches])
    labels = torch.cat([lab for _, _, lab in batches])
    assert index.tolist() == [0, 1, 2, 3, 4, 5] and labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(out[:3], images) and torch.equal(out[3:], images.flip(-1))
    # two ranks share the six images between them, each exactly once
    shares = [
        torch.cat([i for i, _, _ in real_images(dataset, get_colorspace("rgb"), 6, 2, 0, "cpu", r, 2, True)])
        for r in (0, 1)
    ]
    assert sorted(torch.cat(shares).tolist()) == list(range(6))


# ------------------------------------------------------------------------------------------------
# PPL


def test_percentile_filter_matches_numpy_lower_higher():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1000, generator=g, dtype=torch.float64).exp()
    lo = np.percentile(v.numpy(), 1, method="lower")
    hi = np.percentile(v.numpy(), 99, method="higher")
    vals = v.numpy()
    expected = vals[(vals >= lo) & (vals <= hi)].mean()
    assert float(percentile_filtered_mean(v)) == pytest.approx(float(expected), rel=1e-12)
    # 0..999: the 9 smallest and 9 largest are dropped
    assert float(percentile_filtered_mean(torch.arange(1000.0)[torch.randperm(1000)])) == pytest.approx(499.5)
    # a huge outlier is removed, a constant set is kept whole
    spiky = torch.cat([torch.ones(999), torch.tensor([1e9])])
    assert float(percentile_filtered_mean(spiky)) == pytest.approx(1.0)
    assert float(percentile_filtered_mean(torch.full((7,), 3.0))) == 3.0


def test_ppl_metric_accumulates_and_filters():
    m = PerceptualPathLength()
    m.update(torch.arange(500.0))
    m.update(torch.arange(500.0, 1000.0))
    assert float(m.compute()) == pytest.approx(499.5)


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    assert torch.allclose(slerp(a, b, torch.zeros(5)), a / a.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(5)), b / b.norm(dim=1, keepdim=True), atol=1e-5)
    mid = slerp(a, b, torch.full((5,), 0.5))
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-6)


def test_crop_and_downsample():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert crop_face(x).shape == (1, 1, 4, 4) and crop_face(x)[0, 0, 0, 0] == 3 * 8 + 2
    assert downsample_to_256(torch.ones(1, 3, 512, 1024)).shape == (1, 3, 128, 256)
    assert downsample_to_256(torch.ones(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    # NVIDIA's factor is G.img_resolution // 256, taken before the face crop: a 1024 px face crop
    # (512 px) is reduced by 4 to 128 px, not by 2
    face = torch.ones(1, 3, 1024, 1024)
    assert downsample_to_256(crop_face(face), downsample_factor(face)).shape == (1, 3, 128, 128)


def test_ppl_reads_the_raw_output_as_nvidia():
    """perceptual_path_length.py feeds (img + 1) * 255 / 2 unclamped; so does gamut for rgb/rgba/gray."""
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.5]).view(1, 1, 1, 5).repeat(1, 3, 1, 1)
    assert torch.equal(ppl_rgb(x, get_colorspace("rgb"))[0, 0, 0], torch.tensor([-0.25, 0.0, 0.5, 1.0, 1.25]))
    gray = ppl_rgb(x[:, :1], get_colorspace("gray"))
    assert gray.shape == (1, 3, 1, 5) and torch.equal(gray[0, 2], gray[0, 0])
    assert ppl_rgb(torch.cat([x, x[:, :1]], 1), get_colorspace("rgba")).shape == (1, 3, 1, 5)
    lab = ppl_rgb(torch.zeros(1, 3, 2, 2), get_colorspace("lab"))  # no affine decode: decoded, in range
    assert lab.min() >= 0 and lab.max() <= 1


@pytest.fixture(scope="module")
def lpips_net():
    torch.manual_seed(0)
    trunk = torchvision.models.vgg16(weights=None).features[:30]
    return LPIPS(trunk, _load_heads(heads_file("/nonexistent")))  # heads from torchmetrics' wheel


def test_lpips_is_a_distance_like_score(lpips_net):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    assert torch.allclose(lpips_net(x, x), torch.zeros(2))
    d = lpips_net(x, y)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(d, lpips_net(y, x), rtol=1e-5)
    with pytest.raises(ValueError, match="at least 16x16"):
        lpips_net(x[..., :8, :8], y[..., :8, :8])


class FakeG(nn.Module):
    """mapping: z -> ws [N, 2, 6]; synthesis: an image that depends on ws (or not), with optional noise."""

    def __init__(self, uses_w: bool, noisy: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.z_dim, self.uses_w, self.noisy = 6, uses_w, noisy
        self.map = nn.Linear(6, 6)
        self.pattern = torch.randn(1, 3, 16, 16)

    def mapping(self, z, c=None):
        return self.map(z).unsqueeze(1).repeat(1, 2, 1)

    def synthesis(self, ws, noise_mode="random"):
        n = ws.shape[0]
        img = self.pattern.repeat(n, 1, 1, 1)
        if self.uses_w:
            img = img * ws[:, 0, :3, None, None] + ws[:, 1, 3:, None, None]
        if self.noisy and noise_mode == "random":
            img = img + torch.randn(n, 1, 16, 16)
        return torch.tanh(img)


def _fake_module(G):
    return SimpleNamespace(
        G_ema=G,
        device=torch.device("cpu"),
        num_classes=0,
        labels_to_onehot=lambda x: None,
        colorspace=get_colorspace("rgb"),
    )


@pytest.mark.parametrize("space", ["zfull", "wfull", "wend"])
def test_ppl_is_zero_when_the_image_ignores_w_and_positive_otherwise(lpips_net, space):
    kw = dict(spaces=[space], epsilons=[1e-4, 1e-2], num_samples=6, batch_size=3, seed=0)
    flat = ppl_metrics(_fake_module(FakeG(uses_w=False)), lpips_net, **kw)
    assert set(flat) == {result_key(space, 1e-4), result_key(space, 1e-2)} == {f"ppl_{space}", f"ppl_{space}_eps0.01"}
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in flat.values())
    flat = ppl_metrics(_fake_module(FakeG(uses_w=True)), lpips_net, **kw)
    assert all(v > 0 for v in flat.values())


def test_ppl_holds_the_noise_fixed_within_a_pair(lpips_net):
    G = FakeG(uses_w=False, noisy=True)
    z0, z1, t = torch.randn(3, 6), torch.randn(3, 6), torch.rand(3)
    to_rgb = lambda x: to_display_rgb(x, get_colorspace("rgb"))  # noqa: E731
    d = path_distances(G, lpips_net, to_rgb, z0, z1, None, t, [1e-4], "w", noise_seed=5)
    assert torch.allclose(d, torch.zeros_like(d), atol=1e-6)
    # what the fixed noise prevents: a fresh draw per image would give huge values
    d = path_distances(G, lpips_net, to_rgb, z0, z1, None, t, [1e-4], "w", noise_seed=None)
    assert (d > 1e3).all()


# ------------------------------------------------------------------------------------------------
# names, weights, cache


def test_metric_names_are_checked_and_ppl_expands():
    names = lambda ps: [p.name for p in ps]  # noqa: E731
    assert names(parse_metrics(["fid", "ppl", "ppl_wend"])) == ["fid", "ppl_zfull", "ppl_wfull", "ppl_wend"]
    assert names(parse_metrics("fid,kid")) == ["fid", "kid"]
    with pytest.raises(ValueError, match=r"unknown metric 'fdi'; known: fid50k_full, kid50k_full, pr50k3_full"):
        parse_metrics(["fdi"])
    for bad in ("is50k_full", "fid1", "pr50k0", "fid50m"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse_metrics([bad])


def test_missing_weights_name_the_file_and_where_to_get_it(tmp_path):
    with pytest.raises(MissingWeightsError, match="weights-inception-2015-12-05-6726825d.pth not found") as e:
        InceptionFeatures(tmp_path)
    assert str(tmp_path) in str(e.value) and "paths.weights_dir" in str(e.value) and "https://" in str(e.value)
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth not found"):
        LPIPS.from_weights_dir(tmp_path)
    with pytest.raises(
        MissingWeightsError, match=r"vgg16.pt not found.*stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
    ):
        check_weights(["ppl_wend"], tmp_path)  # PPL measures with NVIDIA's LPIPS, as NVIDIA's does
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        check_weights(["pr50k3_full_torchvision"], tmp_path)
    with pytest.raises(MissingWeightsError, match="weights-inception"):
        check_weights(["kid"], tmp_path)


def test_vgg_weights_load_from_the_weights_dir(tmp_path, lpips_net):
    torch.manual_seed(3)
    trunk = torchvision.models.vgg16(weights=None).features
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, tmp_path / WEIGHTS["vgg16"].filename)
    net = LPIPS.from_weights_dir(tmp_path)
    assert torch.equal(net.slices[0][0].weight, trunk[0].weight)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert float(net(x, x)) == 0.0
    # a file that is not VGG-16, and one that is not a state dict at all
    torch.save({"foo": torch.zeros(1)}, tmp_path / WEIGHTS["vgg16"].filename)
    with pytest.raises(MissingWeightsError, match="lacks VGG-16 trunk"):
        LPIPS.from_weights_dir(tmp_path)
    (tmp_path / WEIGHTS["vgg16"].filename).write_text("<html>rate limited</html>")
    with pytest.raises(MissingWeightsError, match="not a readable state dict"):
        load_weights("vgg16", tmp_path)


def test_feature_cache_round_trip_and_identity(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    images = torch.randint(0, 255, (6, 3, 8, 8), dtype=torch.uint8)

    class DS(BaseImageDataset):  # declares its resolution, which names the cache file
        def __init__(self, imgs, seed):
            self.imgs, self.seed, self.resolution, self.bad_files = imgs, seed, (8, 8), []

        def __len__(self):
            return len(self.imgs)

        def __getitem__(self, i):
            return {"image": self.imgs[i]}

    ds = DS(images, 0)
    ident = feature_cache.dataset_identity(ds, "rgb", 6, weights)
    path = feature_cache.cache_file(tmp_path / "cache", ident)
    assert path.name.startswith("inception-ds-8x8-rgb-n6-")
    mirrored = feature_cache.dataset_identity(ds, "rgb", 6, weights, "vgg16-torchvision", mirror=True)
    assert feature_cache.cache_file(tmp_path, mirrored).name.startswith("vgg16-torchvision-ds-8x8-rgb-n6-mirror-")
    feats = torch.randn(6, 4)
    feature_cache.save_features(path, ident, feats)
    assert torch.equal(feature_cache.load_features(path, ident), feats)
    ds.bad_files.append("x.png")  # reader counters do not change the identity
    assert feature_cache.dataset_identity(ds, "rgb", 6, weights) == ident
    for other in (
        feature_cache.dataset_identity(DS(images, 1), "rgb", 6, weights),
        feature_cache.dataset_identity(ds, "gray", 6, weights),
        feature_cache.dataset_identity(ds, "rgb", 5, weights),
        feature_cache.dataset_identity(DS(images.flip(0), 0), "rgb", 6, weights),
        feature_cache.dataset_identity(ds, "rgb", 6, weights, mirror=True),
        feature_cache.dataset_identity(ds, "rgb", 6, weights, network="vgg16-torchvision"),
    ):
        assert other != ident and feature_cache.cache_file(tmp_path / "cache", other) != path
    path.write_bytes(b"damaged")
    assert feature_cache.load_features(path, ident) is None
