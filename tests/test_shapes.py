"""The built-in procedural dataset (src/datamodules/shapes.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from src.datamodules.shapes import CLASSES, ShapesDataset


def test_item_format() -> None:
    item = ShapesDataset(size=10)[3]
    assert set(item) == {"image", "label"}
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 32, 32)
    assert item["label"].dtype == torch.int64 and item["label"].dim() == 0


@pytest.mark.parametrize("resolution", [32, [32, 64], [64, 32], 8])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shape_and_dtype(resolution: int | list[int], channels: int) -> None:
    ds = ShapesDataset(size=5, resolution=resolution, channels=channels)
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    assert ds.resolution == (h, w)
    for i in range(len(ds)):
        image = ds[i]["image"]
        assert image.shape == (channels, h, w) and image.dtype == torch.uint8
        assert image.is_contiguous()


def test_deterministic_from_seed_and_index() -> None:
    a, b = ShapesDataset(size=50, seed=3), ShapesDataset(size=50, seed=3)
    for i in (0, 7, 49):
        assert torch.equal(a[i]["image"], b[i]["image"]) and a[i]["label"] == b[i]["label"]
    # order of access does not matter
    assert torch.equal(a[7]["image"], ShapesDataset(size=50, seed=3)[7]["image"])
    other = ShapesDataset(size=50, seed=4)
    assert sum(not torch.equal(a[i]["image"], other[i]["image"]) for i in range(20)) == 20
    assert sum(not torch.equal(a[i]["image"], a[i + 1]["image"]) for i in range(20)) == 20


def test_does_not_touch_global_rngs() -> None:
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    ds = ShapesDataset(size=20, max_shapes=3)
    for i in range(20):
        ds[i]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_labels_cover_all_kinds() -> None:
    ds = ShapesDataset(size=200, seed=0)
    labels = [int(ds[i]["label"]) for i in range(200)]
    assert ds.num_classes == len(CLASSES) == 6
    assert ds.CLASSES == CLASSES
    assert {"circle", "square", "triangle", "ring", "cross", "diamond"} <= set(CLASSES)
    assert min(labels) >= 0 and max(labels) < len(CLASSES)
    assert set(labels) == set(range(len(CLASSES)))


def test_rgba_alpha_background_and_center() -> None:
    ds = ShapesDataset(size=60, channels=4)
    saw_partial = False
    for i in range(len(ds)):
        image = ds[i]["image"]
        layout = ds.layout(i)
        shape = layout.shapes[-1]
        alpha = image[3]
        for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
            assert alpha[y, x] == 0, (i, CLASSES[shape.kind])
        cy, cx = int(shape.cy), int(shape.cx)
        if CLASSES[shape.kind] == "ring":
            assert alpha[cy, cx] == 0  # the hole
        else:
            assert alpha[cy, cx] == 255, (i, CLASSES[shape.kind])
        assert torch.all(image[:3][:, alpha == 0] == 0)  # transparent background carries no color
        saw_partial |= bool(((alpha > 0) & (alpha < 255)).any())  # anti-aliased edges
    assert saw_partial


def test_rgb_center_has_shape_color_and_background_differs() -> None:
    ds = ShapesDataset(size=60)
    for i in range(len(ds)):
        image = ds[i]["image"].int()
        shape = ds.layout(i).shapes[-1]
        if CLASSES[shape.kind] == "ring":
            continue
        color = torch.tensor([round(c * 255) for c in shape.color])
        center = image[:, int(shape.cy), int(shape.cx)]
        assert (center - color).abs().max() <= 1
        corner = image[:, 0, 0]
        luma = torch.tensor([0.299, 0.587, 0.114])
        # luminances are at least 0.25 * 255 apart by design: readable in gray too
        assert abs(float(luma @ (center - corner).float())) > 50


def test_gray_channel_is_luminance_of_rgb() -> None:
    rgb, gray = ShapesDataset(size=10, channels=3), ShapesDataset(size=10, channels=1)
    for i in range(10):
        luma = (torch.tensor([0.299, 0.587, 0.114]) @ rgb[i]["image"].float().flatten(1)).reshape(32, 32)
        assert (gray[i]["image"][0].float() - luma).abs().max() <= 1.0


def test_shape_sizes_are_large() -> None:
    ds = ShapesDataset(size=200, resolution=[32, 64], channels=4)
    coverage = torch.stack([ds[i]["image"][3].float().mean() / 255 for i in range(200)])
    assert coverage.min() > 0.01 and coverage.mean() > 0.05


def test_max_shapes() -> None:
    ds = ShapesDataset(size=50, resolution=64, max_shapes=3)
    counts = [len(ds.layout(i).shapes) for i in range(50)]
    assert min(counts) >= 1 and max(counts) == 3
    for i in range(50):
        layout = ds.layout(i)
        largest = max(layout.shapes, key=lambda s: s.size)
        assert int(ds[i]["label"]) == largest.kind == layout.label


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="data.resolution"):
        ShapesDataset(resolution=0)
    with pytest.raises(ValueError, match="data.resolution"):
        ShapesDataset(resolution=[32, -1])
    assert ShapesDataset(resolution=[30, 48])[0]["image"].shape == (3, 30, 48)  # any size (model checks its own)
    with pytest.raises(ValueError, match="data.dataset.channels"):
        ShapesDataset(channels=2)
    with pytest.raises(ValueError, match="data.dataset.size"):
        ShapesDataset(size=0)
    with pytest.raises(IndexError):
        ShapesDataset(size=4)[4]


def test_speed() -> None:
    ds = ShapesDataset(size=1000, resolution=32)
    ds[0]
    start = time.perf_counter()
    for i in range(1000):
        ds[i]
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"1000 images at 32x32 took {elapsed:.2f} s"


def test_easier_options() -> None:
    palette = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    ds = ShapesDataset(
        size=100,
        kinds=["circle", "cross"],
        size_range=[0.6, 0.7],
        rotate=False,
        position_jitter=0.0,
        palette=palette,
        background=[0.0, 0.0, 0.0],
    )
    labels = set()
    for i in range(len(ds)):
        layout = ds.layout(i)
        shape = layout.shapes[-1]
        labels.add(int(ds[i]["label"]))
        assert 0.6 * 32 <= shape.size <= 0.7 * 32 and shape.angle == 0.0
        assert (shape.cx, shape.cy) == (16.0, 16.0)
        assert list(shape.color) in palette
        image = ds[i]["image"]
        assert torch.all(image[:, 0, 0] == 0) and torch.all(image[:, -1, -1] == 0)  # the solid background
    assert labels == {CLASSES.index("circle"), CLASSES.index("cross")}  # labels stay indices into CLASSES
    half = ShapesDataset(size=50, position_jitter=0.5)
    for i in range(50):
        s = half.layout(i).shapes[-1]
        assert abs(s.cx - 16) <= 0.5 * (16 - s.size / 2) + 1e-6 and abs(s.cy - 16) <= 0.5 * (16 - s.size / 2) + 1e-6
    # options left at their defaults give today's images
    assert "kinds" not in repr(ShapesDataset(size=2)) and "rotate=False" in repr(ShapesDataset(size=2, rotate=False))


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"kinds": ["hexagon"]}, "kinds"),
        ({"kinds": []}, "kinds"),
        ({"size_range": [0.5]}, "size_range"),
        ({"size_range": [0.8, 0.5]}, "size_range"),
        ({"size_range": [0.5, 1.5]}, "size_range"),
        ({"rotate": "no"}, "rotate"),
        ({"position_jitter": 2.0}, "position_jitter"),
        ({"palette": [[1, 0]]}, "palette"),
        ({"palette": []}, "palette"),
        ({"background": [0, 0, 2]}, "background"),
    ],
)
def test_easier_options_reject_bad_values(kwargs, key) -> None:
    with pytest.raises(ValueError, match=f"data.dataset.{key}"):
        ShapesDataset(**kwargs)


def test_label_counts_match_the_items() -> None:
    ds = ShapesDataset(size=120, resolution=16, seed=5, kinds=["triangle", "ring", "cross"])
    items = torch.stack([ds[i]["label"] for i in range(len(ds))])
    counts = ds.label_counts
    assert counts.dtype == torch.int64 and counts.shape == (len(CLASSES),)
    assert torch.equal(counts, torch.bincount(items, minlength=len(CLASSES)))
    assert counts[[CLASSES.index(k) for k in ("circle", "square", "diamond")]].sum() == 0
    assert (counts[[CLASSES.index(k) for k in ("triangle", "ring", "cross")]] > 20).all()
