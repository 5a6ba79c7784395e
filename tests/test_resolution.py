"""Sizes for data (any positive size) and StyleGAN resolutions ((b_h * 2**k, b_w * 2**k); more in test_any_size.py)."""

import pytest

from src.utils.resolution import base_shape, parse_resolution, parse_size


def test_parse_size_accepts_any_positive_size():
    assert parse_size(224) == (224, 224) and parse_size([48, 100]) == (48, 100)
    for bad in (0, [3, 0], "64", [1, 2, 3], True, [1.5, 2]):
        with pytest.raises(ValueError, match="data.resolution"):
            parse_size(bad)


def test_parse_resolution_needs_a_small_base():
    assert parse_resolution(64) == (64, 64) and parse_resolution([32, 128]) == (32, 128)
    assert parse_resolution(224) == (224, 224)  # 7 * 32
    with pytest.raises(ValueError, match=r"model.resolution=36: .*short base side of 3 to 7 px"):
        parse_resolution(36, "model.resolution")


def test_base_shape():
    assert base_shape(64, 128) == (4, 8, 4) and base_shape(4, 4) == (4, 4, 0) and base_shape(128, 32) == (16, 4, 3)
