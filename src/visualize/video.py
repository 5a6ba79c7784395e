"""Write frame sequences as MP4 (H.264 through PyAV) or GIF (Pillow), atomically; count frames back.

Frames are uint8 ``[H, W, 3]`` arrays (RGBA is flattened onto black, gray repeated). MP4 needs even
sides for yuv420p, so odd frames are padded by one pixel; ``scale`` enlarges tiny frames (nearest)
so small generators give watchable videos.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from src.utils.io import atomic_write

VIDEO_FORMATS = ("mp4", "gif")


def as_rgb_frame(frame: np.ndarray, scale: int = 1) -> np.ndarray:
    """uint8 ``[H, W]`` / ``[H, W, 1|3|4]`` -> ``[H * scale, W * scale, 3]``."""
    f = np.asarray(frame)
    if f.dtype != np.uint8:
        raise ValueError(f"video frames must be uint8, got {f.dtype}")
    if f.ndim == 2:
        f = f[:, :, None]
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif f.shape[2] == 4:
        alpha = f[:, :, 3:4].astype(np.float32) / 255.0
        f = (f[:, :, :3].astype(np.float32) * alpha + 0.5).astype(np.uint8)
    if scale > 1:
        f = f.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.ascontiguousarray(f)


def video_format(path: str | Path) -> str:
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f"{path}: video format {fmt!r} not supported; use one of {', '.join(VIDEO_FORMATS)}")
    return fmt


def write_video(
    frames: Sequence[np.ndarray], path: str | Path, fps: float = 30.0, scale: int = 1, crf: int = 18
) -> Path:
    """Write ``frames`` to ``path`` (.mp4 or .gif, by suffix), atomically. Returns the path."""
    fmt = video_format(path)
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    rgb = [as_rgb_frame(f, scale) for f in frames]
    shape = rgb[0].shape
    for i, f in enumerate(rgb):
        if f.shape != shape:
            raise ValueError(f"{path}: frame {i} is {f.shape[1]}x{f.shape[0]}, frame 0 is {shape[1]}x{shape[0]}")
    if fmt == "gif":
        return atomic_write(path, lambda f: _write_gif(rgb, f, fps))
    return atomic_write(path, lambda f: _write_mp4(rgb, f, fps, crf))


def _write_gif(frames: list[np.ndarray], file, fps: float) -> None:
    """Identical consecutive frames become one frame shown longer (GIF stores durations; Pillow
    would merge them anyway), so a GIF decodes to the number of *distinct* consecutive frames."""
    step = 1000 / fps
    kept: list[np.ndarray] = []
    durations: list[float] = []
    for f in frames:
        if kept and np.array_equal(f, kept[-1]):
            durations[-1] += step
        else:
            kept.append(f)
            durations.append(step)
    images = [Image.fromarray(f) for f in kept]
    images[0].save(
        file,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=[round(d) for d in durations],
        loop=0,
        optimize=False,
        disposal=1,
    )


def _write_mp4(frames: list[np.ndarray], file, fps: float, crf: int) -> None:
    import av

    h, w = frames[0].shape[:2]
    ph, pw = h + h % 2, w + w % 2
    with av.open(file, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            if (ph, pw) != (h, w):
                f = np.pad(f, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video(path: str | Path) -> list[np.ndarray]:
    """Decode every frame of an .mp4 or .gif as uint8 ``[H, W, 3]`` (for checks and tests)."""
    fmt = video_format(path)
    if fmt == "gif":
        out = []
        with Image.open(path) as im:
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                out.append(np.asarray(im.convert("RGB")))
        return out
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
