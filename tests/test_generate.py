"""The generation CLI on a checkpoint from a real (tiny) training run, on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.tools import generate
from src.train import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    from tests.conftest import TINY, compose_cfg, logs_in

    log_dir = tmp_path_factory.mktemp("logs")
    with logs_in(log_dir):
        for cs in ("rgb", "rgba"):
            train(
                compose_cfg(
                    [
                        *TINY,
                        "logger=none",
                        f"run_name={cs}",
                        f"colorspace={cs}",
                        "data.resolution=[16,32]",
                        "trainer.max_steps=2",
                    ]
                )
            )
    return {cs: log_dir / "quickstart" / cs / "checkpoints" / "last.ckpt" for cs in ("rgb", "rgba")}


def test_parse_seeds():
    assert generate.parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert generate.parse_seeds([5, 6]) == [5, 6] and generate.parse_seeds(4) == [4]


def test_cli_writes_one_png_per_seed(ckpts, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/generate.py",
            f"ckpt={ckpts['rgb']}",
            "seeds=0-2",
            "trunc=0.7",
            "noise_mode=const",
            f"out={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == ["seed0000.png", "seed0001.png", "seed0002.png"]
    with Image.open(out / "seed0001.png") as im:
        assert im.mode == "RGB" and im.size == (32, 16)  # width x height: non-square works


def test_same_seed_same_image_and_rgba_output(ckpts, tmp_path):
    cfg = generate.parse_args([f"ckpt={ckpts['rgba']}", "seeds=3", f"out={tmp_path / 'a'}"])
    generate.generate(cfg)
    cfg.out = str(tmp_path / "b")
    generate.generate(cfg)
    a, b = (np.asarray(Image.open(tmp_path / d / "seed0003.png")) for d in ("a", "b"))
    assert a.shape == (16, 32, 4) and np.array_equal(a, b)
    cfg.seeds, cfg.out = "4", str(tmp_path / "c")
    generate.generate(cfg)
    assert not np.array_equal(a, np.asarray(Image.open(tmp_path / "c" / "seed0004.png")))


def test_bad_arguments(ckpts, tmp_path):
    with pytest.raises(SystemExit, match="allowed keys"):
        generate.parse_args(["ckpt=x", "sedes=1"])
    with pytest.raises(SystemExit, match="required"):
        generate.parse_args(["seeds=1"])
    with pytest.raises(SystemExit, match="no such checkpoint"):
        generate.main([f"ckpt={tmp_path / 'missing.ckpt'}"])
