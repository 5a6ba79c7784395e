"""SEGAN traversals: the scripts/traverse.py CLI and the training callback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.tools import generate, traverse
from src.train import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def segan_ckpt(tiny_cfg, log_dir) -> Path:
    train(tiny_cfg("model=segan", "model.mode=2", "trainer.max_steps=1", "callbacks.sample_grid.every_kimg=100"))
    return log_dir / "quickstart" / "test" / "checkpoints" / "last.ckpt"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )


def test_traverse_cli_writes_a_seeds_by_values_grid_per_dim(segan_ckpt, tmp_path):
    out = tmp_path / "trav"
    proc = _run(
        "traverse.py",
        f"ckpt={segan_ckpt}",
        "layer=1",
        "subspace=2",
        "dims=[0,3]",
        "values=[-2,0,2]",
        "seeds=[0,1]",
        f"out={out}",
        "stats_n=200",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["L1N2D0.png", "L1N2D3.png"]
    grid = np.asarray(Image.open(out / "L1N2D3.png"))
    assert grid.shape == (2 * 16, 3 * 16, 3)  # rows = seeds, columns = values
    # the middle column adds 0: exactly generate.py's image of that seed (same z, const noise)
    gen = tmp_path / "gen"
    generate.main([f"ckpt={segan_ckpt}", "seeds=0-1", f"out={gen}"])
    for row, seed in enumerate((0, 1)):
        ref = np.asarray(Image.open(gen / f"seed{seed:04d}.png"))
        assert np.array_equal(grid[row * 16 : (row + 1) * 16, 16:32], ref)
        assert not np.array_equal(grid[row * 16 : (row + 1) * 16, 0:16], ref)  # the -2 sigma column moved


@pytest.mark.parametrize(
    "args,message",
    [
        (["layer=1", "subspace=2", "dims=[99]"], "traverse.py: edit dim=99 does not exist: valid dims are 0..15"),
        (["layer=5", "subspace=0"], "traverse.py: edit layer=5 does not exist: valid layers are 0..2"),
        (["layer=0", "subspace=2"], "traverse.py: edit subspace=2 does not exist in layer 0: valid subspaces are 0..1"),
        (["layer=0", "subspace=0", "bogus=1"], "allowed keys: ckpt, layer"),
    ],
)
def test_traverse_cli_bad_input_is_one_line(segan_ckpt, tmp_path, args, message):
    with pytest.raises(SystemExit) as err:  # main() is what the CLI runs; SystemExit(str) prints one line
        traverse.main([f"ckpt={segan_ckpt}", f"out={tmp_path / 'x'}", *args])
    assert message in str(err.value.code) and "\n" not in str(err.value.code)
    assert not (tmp_path / "x").exists()


def test_traverse_cli_prints_the_subspace_table(segan_ckpt, capsys):
    traverse.main([f"ckpt={segan_ckpt}", "table=true"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 8  # header + 8 subspaces at 16 px
    assert lines[5].split()[:6] == ["4", "1", "2", "torgb", "8x8", "3"]


def test_traversal_callback_writes_grids_during_training(tiny_cfg, log_dir):
    train(
        tiny_cfg(
            "model=segan",
            "model.mode=3",
            "trainer.max_steps=2",
            "callbacks=[default,traversal]",
            "callbacks.traversal.every_kimg=0.004",
            "callbacks.traversal.subspaces=[[0,0],[2,1]]",
            "callbacks.traversal.stats_n=64",
            "callbacks.traversal.seeds=[0,1]",
            "callbacks.traversal.num_dims=2",
            "callbacks.traversal.values=[-2,0,2]",
            "callbacks.sample_grid.every_kimg=100",
        )
    )
    samples = log_dir / "quickstart" / "test" / "samples"
    grids = sorted(p.name for p in samples.glob("traverse_*.png"))
    # every 4 images (1 iteration) and at the end: kimg 0.004, 0.008, then the end-of-training grid
    assert [g for g in grids if g.startswith("traverse_L0N0_")] == [
        "traverse_L0N0_kimg000000.004.png",
        "traverse_L0N0_kimg000000.008.png",
    ]
    assert len([g for g in grids if g.startswith("traverse_L2N1_")]) == 2
    grid = np.asarray(Image.open(samples / "traverse_L2N1_kimg000000.008.png"))
    assert grid.shape == (2 * 2 * 16, 3 * 16, 3)  # (2 dims x 2 seeds) rows, 3 values


def test_traversal_callback_rejects_a_missing_subspace(tiny_cfg):
    with pytest.raises(ValueError, match=r"\[4, 0\] does not exist"):
        train(
            tiny_cfg(
                "model=segan",
                "model.mode=3",
                "trainer.max_steps=1",
                "callbacks=[default,traversal]",
                "callbacks.traversal.subspaces=[[4,0]]",
            )
        )
