"""scripts/prepare_dataset.py: folder and FFHQ-tree inputs -> dataset_tool zips that load here."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.datamodules.readers import ImageFolderDataset
from src.tools import prepare_dataset

ROOT = Path(__file__).resolve().parents[1]


def _png(path: Path, seed: int, size=(40, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(a).save(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "imgs"
    for k in range(5):
        _png(d / ("sub" if k % 2 else "") / f"im{k}.png", k)
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    (d / "notes.txt").write_text("not an image")
    return d


def _hash(ds) -> str:
    h = hashlib.sha256()
    for i in range(len(ds)):
        h.update(ds[i]["image"].numpy().tobytes())
    return h.hexdigest()


def test_folder_to_zip_loads_and_manifest(folder, tmp_path, capsys):
    out = tmp_path / "out" / "data.zip"
    m = prepare_dataset.main([f"source={folder}", f"out={out}", "resolution=32", "workers=0"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == m
    assert m["count"] == 5 and m["resolution"] == [32, 32] and m["channels"] == 3
    assert m["resize_filter"] == "box" and m["labels"] is False
    assert m["skipped_count"] == 1 and [s["file"] for s in m["skipped"]] == ["broken.png"]
    assert "broken.png" in m["skipped"][0]["reason"]
    with zipfile.ZipFile(out) as z:
        names = sorted(z.namelist())
        assert names == [
            "00000/img00000000.png",
            "00000/img00000001.png",
            "00000/img00000002.png",
            "00000/img00000003.png",
            "00000/img00000004.png",
            "dataset.json",
            "manifest.json",
        ]
        assert json.loads(z.read("manifest.json")) == m
        assert json.loads(z.read("dataset.json")) == {"labels": None}
    ds = ImageFolderDataset(out, resolution=32)
    assert len(ds) == 5 and ds[0]["image"].shape == (3, 32, 32)
    assert _hash(ds) == m["sha256"]
    assert not list(out.parent.glob(".*.tmp"))  # no temporary file left behind


def test_ffhq_tree_parallel_workers_rectangular(tmp_path):
    ffhq = tmp_path / "ffhq"
    for k in range(3):
        _png(ffhq / "images1024x1024" / "00000" / f"{k:05d}.png", k, size=(64, 64))
    _png(ffhq / "thumbnails128x128" / "00000" / "00000.png", 9, size=(16, 16))  # ignored: 1024 preferred
    out = tmp_path / "ffhq.zip"
    m = prepare_dataset.main([f"source={ffhq}", f"out={out}", "resolution=[16,32]", "workers=2"])
    assert m["count"] == 3 and m["resolution"] == [16, 32] and m["skipped"] == []
    assert m["source"].endswith("images1024x1024")
    ds = ImageFolderDataset(out, resolution=[16, 32])
    assert len(ds) == 3 and ds[2]["image"].shape == (3, 16, 32)
    assert _hash(ds) == m["sha256"]
    # same images, same hash, whether packed by workers or in-process
    m0 = prepare_dataset.main([f"source={ffhq}", f"out={tmp_path / 'again.zip'}", "resolution=[16,32]", "workers=0"])
    assert m0["sha256"] == m["sha256"]


def test_refuses_overwrite_unless_asked(folder, tmp_path):
    out = tmp_path / "data.zip"
    out.write_bytes(b"precious")
    with pytest.raises(SystemExit, match=str(out)):
        prepare_dataset.main([f"source={folder}", f"out={out}", "resolution=16", "workers=0"])
    assert out.read_bytes() == b"precious"
    m = prepare_dataset.main(
        [
            f"source={folder}",
            f"out={out}",
            "resolution=16",
            "workers=0",
            "overwrite=true",
            "max_images=2",
            "channels=1",
            "resize_filter=lanczos",
        ]
    )
    assert m["count"] == 2 and m["channels"] == 1 and m["resize_filter"] == "lanczos"
    ds = ImageFolderDataset(out, resolution=16, channels=1)
    assert len(ds) == 2 and ds[0]["image"].shape == (1, 16, 16)


def test_labels_from_source_dataset_json(tmp_path):
    src = tmp_path / "labeled"
    for k in range(3):
        _png(src / f"a{k}.png", k)
    (src / "dataset.json").write_text(json.dumps({"labels": [["a0.png", 2], ["a1.png", 0], ["a2.png", 1]]}))
    out = tmp_path / "labeled.zip"
    m = prepare_dataset.main([f"source={src}", f"out={out}", "resolution=16", "workers=0"])
    assert m["labels"] is True
    ds = ImageFolderDataset(out, resolution=16, use_labels=True)
    assert [int(ds[i]["label"]) for i in range(3)] == [2, 0, 1] and ds.num_classes == 3


def test_writes_zips_at_b_2k_sizes(folder, tmp_path):
    """A 3x5-based size (issue 19): center-cropped to 3:5 and resized, readable at that size."""
    out = tmp_path / "stamps.zip"
    m = prepare_dataset.main([f"source={folder}", f"out={out}", "resolution=[24,40]", "workers=0"])
    assert m["resolution"] == [24, 40] and m["count"] == 5
    ds = ImageFolderDataset(out, resolution=[24, 40])
    assert tuple(ds[0]["image"].shape) == (3, 24, 40)


@pytest.mark.parametrize(
    "args, message",
    [
        (["resolution=36"], "resolution=36: .*Nearest valid: 32, 40, 28"),
        (["resize_filter=gauss"], "resize_filter"),
        (["colour=1"], "allowed keys"),
    ],
)
def test_bad_arguments_name_the_key(folder, tmp_path, args, message):
    with pytest.raises(SystemExit, match=message):
        prepare_dataset.main([f"source={folder}", f"out={tmp_path / 'x.zip'}", *args])
    with pytest.raises(SystemExit, match="nowhere"):
        prepare_dataset.main([f"source={tmp_path / 'nowhere'}", f"out={tmp_path / 'x.zip'}"])


def test_command_line(folder, tmp_path):
    out = tmp_path / "cli.zip"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "prepare_dataset.py"),
            f"source={folder}",
            f"out={out}",
            "resolution=16",
            "workers=0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["count"] == 5 and "skipped 1 bad file(s): broken.png" in r.stderr
