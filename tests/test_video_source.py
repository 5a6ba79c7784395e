"""Video clips as a data source: scripts/prepare_dataset.py source=clip.mp4 (or a folder of clips).

Clips are written here with PyAV (H.264 in MP4, MPEG-4 part 2 in Matroska). Frame ``i`` of a clip is
a flat gray of level ``LEVEL * i + offset`` in its left half and white in its right half, so which
frames were chosen, and which part of a frame a crop kept, can be read back from the zip's pixels.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from src.datamodules.readers import ImageFolderDataset, VideoClipError, VideoSource
from src.tools import prepare_dataset

LEVEL = 10  # gray step between consecutive frames (codecs keep a flat gray within a couple of levels)
FPS = 10


def write_clip(path: Path, frames: int = 20, offset: int = 0, codec: str = "libx264", h: int = 96, w: int = 160):
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            a = np.full((h, w, 3), 255, np.uint8)
            a[:, : w // 2] = offset + LEVEL * i
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def left_level(img: np.ndarray) -> float:
    """Mean of the left quarter of a [C, H, W] image (inside the gray half, away from the edge)."""
    return float(img[:, :, : img.shape[2] // 4].mean())


def run(*args: str) -> dict:
    return prepare_dataset.main([*args, "workers=0"])


def test_clip_frames_by_time_range_and_stride_load_as_training_data(tmp_path, capsys):
    clip = tmp_path / "rain.mp4"
    write_clip(clip)
    out = tmp_path / "rain.zip"
    m = run(f"source={clip}", f"out={out}", "resolution=[64,128]", "channels=1", "frame_stride=3",
            "start_time=0.5", "end_time=1.5")  # fmt: skip
    # frames at 0.5 s (index 5), then every third inside [0.5, 1.5): 5, 8, 11, 14
    assert m["count"] == 4 and m["resolution"] == [64, 128] and m["channels"] == 1
    assert [f[1:] for f in m["frames"]] == [["rain.mp4", t] for t in (0.5, 0.8, 1.1, 1.4)]
    assert [f[0] for f in m["frames"]] == [f"00000/img0000000{i}.png" for i in range(4)]
    assert m["video"] == {"clips": ["rain.mp4"], "frame_stride": 3, "start_time": 0.5, "end_time": 1.5}
    assert json.loads(capsys.readouterr().out) == m

    ds = ImageFolderDataset(out, resolution=(64, 128), channels=1)
    images = [ds[i]["image"].numpy() for i in range(len(ds))]
    assert all(img.shape == (1, 64, 128) for img in images)
    for img, frame in zip(images, (5, 8, 11, 14), strict=True):
        assert left_level(img) == pytest.approx(LEVEL * frame, abs=3)
        assert img[:, :, -8:].mean() > 245  # the white half
    with zipfile.ZipFile(out) as z:
        assert json.loads(z.read("dataset.json")) == {"labels": None}
        assert json.loads(z.read("manifest.json"))["sha256"] == m["sha256"]


def test_every_frame_by_default_and_max_images(tmp_path):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=12)
    m = run(f"source={clip}", f"out={tmp_path / 'all.zip'}", "resolution=[48,80]")
    assert m["count"] == 12 and [f[2] for f in m["frames"]] == pytest.approx([i / FPS for i in range(12)])
    m = run(f"source={clip}", f"out={tmp_path / 'five.zip'}", "resolution=[48,80]", "max_images=5")
    assert m["count"] == 5 and m["frames"][-1][2] == pytest.approx(0.4)


def test_folder_of_clips_in_order_with_subfolder_labels_and_a_broken_clip(tmp_path):
    root = tmp_path / "clips"
    write_clip(root / "drizzle" / "b.mkv", frames=4, offset=100, codec="mpeg4")
    write_clip(root / "drizzle" / "a.mp4", frames=3, offset=0)
    write_clip(root / "storm" / "c.mp4", frames=2, offset=200)
    (root / "storm" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real movie")
    (root / "notes.txt").write_text("ignored")
    out = tmp_path / "clips.zip"
    m = run(f"source={root}", f"out={out}", "resolution=[24,40]", "use_labels=true")
    assert m["video"]["clips"] == ["drizzle/a.mp4", "drizzle/b.mkv", "storm/broken.mp4", "storm/c.mp4"]
    assert [f[1] for f in m["frames"]] == ["drizzle/a.mp4"] * 3 + ["drizzle/b.mkv"] * 4 + ["storm/c.mp4"] * 2
    assert m["skipped_count"] == 1 and m["skipped"][0]["file"] == "storm/broken.mp4"
    assert "storm/broken.mp4" in m["skipped"][0]["reason"]
    assert m["labels"] is True and m["class_names"] == ["drizzle", "storm"]

    ds = ImageFolderDataset(out, resolution=(24, 40), channels=3, use_labels=True)
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [0] * 7 + [1] * 2
    levels = [left_level(ds[i]["image"].numpy()) for i in range(len(ds))]
    expected = [0, 10, 20, 100, 110, 120, 130, 200, 210]
    assert levels == pytest.approx(expected, abs=4)


def test_crop_box_is_cut_before_the_aspect_crop(tmp_path):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=2, offset=60)
    # x=8..72 lies in the gray half (x < 80): the white half is gone
    m = run(f"source={clip}", f"out={tmp_path / 'left.zip'}", "resolution=[32,32]", "crop=[8,16,64,64]")
    ds = ImageFolderDataset(tmp_path / "left.zip", resolution=32, channels=3)
    assert m["crop"] == [8, 16, 64, 64]
    assert float(ds[1]["image"].float().mean()) == pytest.approx(70, abs=3)
    # a box that does not fit in the 160x96 frame skips the clip once, naming the box
    with pytest.raises(SystemExit, match=r"crop=\[100, 0, 64, 64\].*160x96"):
        run(f"source={clip}", f"out={tmp_path / 'out.zip'}", "resolution=[32,32]", "crop=[100,0,64,64]")
    assert not (tmp_path / "out.zip").exists()


def test_frames_smaller_than_the_target_are_refused_per_clip(tmp_path):
    root = tmp_path / "clips"
    write_clip(root / "big.mp4", frames=2)
    write_clip(root / "small.mp4", frames=5, h=32, w=48)
    m = run(f"source={root}", f"out={tmp_path / 'o.zip'}", "resolution=[48,80]")
    assert m["count"] == 2
    assert [s["file"] for s in m["skipped"]] == ["small.mp4"]  # once, not once per frame
    assert "smaller than the target" in m["skipped"][0]["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frame_stride=0"], "frame_stride=0"),
        (["start_time=-1"], "start_time=-1"),
        (["start_time=2", "end_time=1"], "end_time=1"),
        (["crop=[0,0,10]"], "crop="),
        (["crop=[0,0,0,10]"], "crop="),
    ],
)
def test_bad_video_options_name_the_key(tmp_path, args, message):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=2)
    with pytest.raises(SystemExit, match=message.replace("[", r"\[")):
        run(f"source={clip}", f"out={tmp_path / 'o.zip'}", "resolution=32", *args)


def test_video_options_on_images_and_mixed_folders_are_refused(tmp_path):
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(imgs / "a.png")
    with pytest.raises(SystemExit, match="frame_stride=2: applies to video clips"):
        run(f"source={imgs}", f"out={tmp_path / 'o.zip'}", "resolution=32", "frame_stride=2")
    write_clip(imgs / "c.mp4", frames=2)
    with pytest.raises(SystemExit, match="both images .* and video clips"):
        run(f"source={imgs}", f"out={tmp_path / 'o.zip'}", "resolution=32")


def test_a_time_range_past_the_end_gives_a_clear_error(tmp_path):
    clip = tmp_path / "c.mp4"
    write_clip(clip, frames=5)
    with pytest.raises(SystemExit, match="none of its frames could be converted"):
        run(f"source={clip}", f"out={tmp_path / 'o.zip'}", "resolution=32", "start_time=30")
    assert not (tmp_path / "o.zip").exists()


def test_video_source_without_errors_list_raises_naming_the_clip(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"nope")
    src = VideoSource(tmp_path)
    with pytest.raises(VideoClipError, match="bad.mp4"):
        list(src.frames())
    errors: list = []
    assert list(src.frames(errors)) == [] and errors[0]["file"] == "bad.mp4"
