"""Atomic writes and image grids."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from src.utils.io import atomic_write, image_grid, save_png


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_atomic_write_uses_normal_permissions(tmp_path):
    p = atomic_write(tmp_path / "a.txt", lambda f: f.write("x"), mode="w")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_grid_png_round_trip(tmp_path, channels, mode):
    imgs = torch.rand(5, channels, 4, 6)
    grid = image_grid(imgs, nrow=3)
    assert grid.shape == (8, 18, channels) and grid.dtype == np.uint8
    # image 4 is row 1, column 1
    expected = (imgs[4].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(grid[4:8, 6:12], expected)
    assert not grid[4:8, 12:18].any()  # empty cell
    path = save_png(grid, tmp_path / "g.png")
    with Image.open(path) as im:
        assert im.mode == mode
        assert np.array_equal(np.asarray(im).reshape(grid.shape), grid)


def test_grid_rejects_bad_channels():
    with pytest.raises(ValueError, match="1\\|3\\|4"):
        image_grid(torch.rand(2, 2, 4, 4))
