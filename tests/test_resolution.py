"""Sizes for data (any positive size) and StyleGAN resolutions (each side 4 * 2**k)."""

import pytest

from src.utils.resolution import base_shape, parse_resolution, parse_size


def test_parse_size_accepts_any_positive_size():
    assert parse_size(224) == (224, 224) and parse_size([48, 100]) == (48, 100)
    for bad in (0, [3, 0], "64", [1, 2, 3], True, [1.5, 2]):
        with pytest.raises(ValueError, match="data.resolution"):
            parse_size(bad)


def test_parse_resolution_needs_powers_of_two_times_four():
    assert parse_resolution(64) == (64, 64) and parse_resolution([32, 128]) == (32, 128)
    with pytest.raises(ValueError, match=r"model.resolution=224.*4 \* 2\*\*k"):
        parse_resolution(224, "model.resolution")


def test_base_shape():
    assert base_shape(64, 128) == (4, 8, 4) and base_shape(4, 4) == (4, 4, 0) and base_shape(128, 32) == (16, 4, 3)
