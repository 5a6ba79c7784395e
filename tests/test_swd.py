"""The sliced Wasserstein distance (src/metrics/swd.py) against the definitions of Karras et al. 2018,
appendix D, and OpenCV's pyramid (``pyrDown``/``pyrUp`` with mirrored borders), computed here with
scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from src.metrics import swd

FILTER = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256


def scipy_down(x: np.ndarray) -> np.ndarray:
    return scipy.ndimage.convolve(x, FILTER[None, None], mode="mirror")[:, :, ::2, ::2]


def scipy_up(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    z = np.zeros((n, c, 2 * h, 2 * w))
    z[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(z, 4 * FILTER[None, None], mode="mirror")


def test_pyramid_is_opencvs_with_mirrored_borders_and_reconstructs_the_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 32, 48)).astype(np.float64)
    pyramid = swd.laplacian_pyramid(torch.from_numpy(images), 2)
    low = scipy_down(images)
    np.testing.assert_allclose(pyramid[1].numpy(), low, atol=1e-4)
    np.testing.assert_allclose(pyramid[0].numpy(), images - scipy_up(low), atol=1e-4)
    assert [tuple(p.shape[2:]) for p in pyramid] == [(32, 48), (16, 24)]
    torch.testing.assert_close(swd.reconstruct(pyramid).double(), torch.from_numpy(images), atol=1e-3, rtol=0)


def test_levels_stop_at_16_px_on_the_shorter_side():
    assert swd.num_levels((16, 16)) == 1
    assert swd.num_levels((32, 32)) == 2
    assert swd.num_levels((48, 80)) == 2
    assert swd.num_levels((1024, 1024)) == 7
    with pytest.raises(ValueError, match="at least 16 px"):
        swd.num_levels((8, 64))


def test_descriptors_are_7x7_neighbourhoods_inside_the_image():
    level = torch.arange(2 * 3 * 20 * 24, dtype=torch.float32).reshape(2, 3, 20, 24)
    d = swd.descriptors(level, 50, torch.Generator().manual_seed(1))
    assert d.shape == (100, 3, 7, 7)
    for k in (0, 49, 50, 99):
        i = k // 50
        # every value names its own position: recover the patch's top-left corner and compare the slice
        flat = int(d[k, 0, 0, 0])
        y, x = (flat % (20 * 24)) // 24, flat % 24
        assert flat // (3 * 20 * 24) == i and 0 <= y <= 20 - 7 and 0 <= x <= 24 - 7
        torch.testing.assert_close(d[k], level[i, :, y : y + 7, x : x + 7])


def test_normalize_gives_each_channel_mean_0_and_std_1():
    d = torch.randn(500, 3, 7, 7) * torch.tensor([1.0, 5.0, 0.1])[None, :, None, None] + 3
    n = swd.normalize(d).reshape(500, 3, 49)
    torch.testing.assert_close(n.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(n.std(dim=(0, 2), correction=0), torch.ones(3), atol=1e-4, rtol=0)


def test_sliced_wasserstein_of_a_shift_is_the_mean_projected_shift():
    """W1 between a 1-D sample and the same sample shifted by s is |s|; along direction d a shift t * e_0
    of every row moves each projection by t * d_0, so the SWD is t * mean |d_0| over the drawn directions."""
    a = torch.randn(1000, 6, dtype=torch.float64)
    b = a[torch.randperm(1000)] + torch.tensor([0.5, 0, 0, 0, 0, 0], dtype=torch.float64)
    got = swd.sliced_wasserstein(a, b, repeats=3, dirs=40, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    expected = []
    for _ in range(3):
        d = torch.randn(6, 40, generator=g, dtype=torch.float64)
        expected.append((0.5 * (d[0] / d.norm(dim=0)).abs()).mean())
    assert got == pytest.approx(float(torch.stack(expected).mean()), rel=1e-9)
    assert swd.sliced_wasserstein(a, a.flip(0), 2, 16, torch.Generator()) == pytest.approx(0.0, abs=1e-12)


def test_swd_ranks_a_set_of_the_same_images_far_below_different_images():
    g = torch.Generator().manual_seed(0)
    # reals: smooth blobs; a second draw of the same kind, and noise
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")

    def blobs(n: int) -> torch.Tensor:
        c = torch.rand(n, 2, generator=g) * 20 + 6
        r = ((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2).sqrt()
        img = (r < 7).float()[:, None] * torch.rand(n, 3, 1, 1, generator=g) * 255
        return img.round().to(torch.uint8)

    real = [blobs(64) for _ in range(4)]
    same = [blobs(64) for _ in range(4)]
    noise = [torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8) for _ in range(4)]
    close = swd.swd(real, same, per_image=16)
    far = swd.swd(real, noise, per_image=16)
    assert set(close) == {"SWDx1e3_32", "SWDx1e3_16", "SWDx1e3_avg"}
    assert close["SWDx1e3_avg"] == pytest.approx((close["SWDx1e3_32"] + close["SWDx1e3_16"]) / 2)
    assert far["SWDx1e3_32"] > 5 * close["SWDx1e3_32"] and far["SWDx1e3_16"] > 5 * close["SWDx1e3_16"]
    with pytest.raises(ValueError, match="equal sets"):
        swd.swd(real, same[:3], per_image=4)
