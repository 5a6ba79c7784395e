"""Video clips as an image source: the frames of one clip, or of every clip in a folder, decoded with PyAV.

StyleGAN2-in-a-Nutshell trained its rain-drop model on frames taken from a video clip;
``scripts/prepare_dataset.py source=clip.mp4`` (or a folder of clips) packs such frames into a
dataset_tool zip through :class:`VideoSource`. Frames are chosen per clip by time and stride:

- ``start_time`` / ``end_time`` (seconds, ``end_time`` exclusive, null = to the end) keep the frames
  whose presentation time lies in the range;
- ``frame_stride`` keeps every n-th of those, counted from the first frame in the range of each clip.

Clips are listed as :class:`~src.datamodules.readers.sources.FolderSource` lists images: recursively,
hidden files skipped, sorted by relative POSIX path, so the frame order (and the zip) is reproducible.
Any container and codec FFmpeg (through PyAV) decodes is read; :data:`VIDEO_EXTENSIONS` only decides
which names in a folder are listed as clips (a single file is tried whatever its name).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import PIL.Image

from src.datamodules.readers.sources import DataRootNotFoundError

__all__ = ["VIDEO_EXTENSIONS", "VideoClipError", "VideoFrame", "VideoSource", "is_video_name", "list_videos"]

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".ogv",
)  # fmt: skip


def is_video_name(name: str) -> bool:
    """True for a name with one of :data:`VIDEO_EXTENSIONS` (case-insensitive), not hidden."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class VideoFrame:
    """One chosen frame: its clip (relative name), presentation time in seconds, and the picture (RGB)."""

    clip: str
    time: float
    image: PIL.Image.Image

    @property
    def name(self) -> str:
        """``clip@12.345s``: how error messages and the manifest name the frame."""
        return f"{self.clip}@{self.time:.3f}s"


class VideoClipError(ValueError):
    """A clip that cannot be opened or stops decoding part-way; the message names the clip."""


class VideoSource:
    """The frames of a clip, or of the clips under a folder, chosen by time range and stride.

    Args:
        root: a video file, or a folder searched recursively for :data:`VIDEO_EXTENSIONS`.
        frame_stride: keep every n-th frame in the time range (1 = every frame).
        start_time: seconds; frames before it are skipped (the clip is seeked there when it can be).
        end_time: seconds, exclusive; null reads to the end of each clip.
    """

    def __init__(
        self, root: str | Path, frame_stride: int = 1, start_time: float = 0.0, end_time: float | None = None
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DataRootNotFoundError(f"source: {self.root} does not exist")
        if not isinstance(frame_stride, int) or isinstance(frame_stride, bool) or frame_stride < 1:
            raise ValueError(f"frame_stride={frame_stride!r}: expected a positive integer")
        if start_time is None or float(start_time) < 0:
            raise ValueError(f"start_time={start_time!r}: expected seconds >= 0")
        if end_time is not None and float(end_time) <= float(start_time):
            raise ValueError(f"end_time={end_time!r}: must be later than start_time={start_time}")
        self.class_names: list[str] | None = None  # set when labels come from the clip subfolders
        self.frame_stride = frame_stride
        self.start_time = float(start_time)
        self.end_time = None if end_time is None else float(end_time)
        if self.root.is_file():
            self._clips = [self.root.name]
            self._base = self.root.parent
        else:
            self._base = self.root
            self._clips = sorted(list_videos(self.root))
            if not self._clips:
                raise ValueError(f"source: no video clips ({', '.join(VIDEO_EXTENSIONS)}) under {self.root}")

    @property
    def clips(self) -> list[str]:
        """The clips, as paths relative to the folder (the file's name for a single clip)."""
        return list(self._clips)

    def __len__(self) -> int:
        return len(self._clips)

    def estimated_frames(self) -> int | None:
        """How many frames :meth:`frames` will give, from each clip's header (frame count or duration
        and rate), or None when a clip's header does not say; for progress bars only."""
        import av

        total = 0
        for clip in self._clips:
            try:
                with av.open(str(self._base / clip)) as container:
                    stream = container.streams.video[0]
                    rate = float(stream.average_rate or stream.guessed_rate or 0)
                    duration = (
                        float(stream.duration * stream.time_base)
                        if stream.duration is not None and stream.time_base is not None
                        else (container.duration / 1e6 if container.duration else None)
                    )
            except (av.error.FFmpegError, IndexError, OSError):
                continue  # frames() reports the clip
            if not rate or duration is None:
                return None
            end = duration if self.end_time is None else min(duration, self.end_time)
            n = max(0, round((end - self.start_time) * rate))
            total += -(-n // self.frame_stride)
        return total

    def frames(self, errors: list[dict[str, str]] | None = None) -> Iterator[VideoFrame]:
        """Every chosen frame of every clip, in clip order then time order.

        A clip that cannot be opened, has no video stream or stops decoding part-way is recorded in
        ``errors`` as ``{"file": clip, "reason": ...}`` (frames decoded before the failure are kept)
        and the next clip is read; without ``errors`` the first such problem raises
        :class:`VideoClipError`.
        """
        for clip in self._clips:
            try:
                yield from self.clip_frames(clip)
            except VideoClipError as e:
                if errors is None:
                    raise
                errors.append({"file": clip, "reason": str(e)})

    def clip_frames(self, clip: str) -> Iterator[VideoFrame]:
        """The chosen frames of one clip (a name from :attr:`clips`); raises :class:`VideoClipError`
        when the clip cannot be opened, has no video stream, or stops decoding part-way."""
        import av

        path = self._base / clip
        try:
            container = av.open(str(path))
        except (av.error.FFmpegError, OSError) as e:
            raise VideoClipError(f"{clip}: cannot open as a video ({type(e).__name__}: {e})") from e
        with container:
            if not container.streams.video:
                raise VideoClipError(f"{clip}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.start_time > 0 and stream.time_base is not None:
                try:  # to the keyframe at or before start_time; frames before start_time are dropped below
                    container.seek(int(self.start_time / stream.time_base), stream=stream, backward=True)
                except av.error.FFmpegError:
                    container.seek(0, stream=stream)
            decoded = kept = 0
            rate = float(stream.average_rate or stream.guessed_rate or 0) or None
            try:
                for frame in container.decode(stream):
                    decoded += 1
                    t = frame.time if frame.time is not None else ((decoded - 1) / rate if rate else 0.0)
                    if t < self.start_time - 1e-6:
                        continue
                    if self.end_time is not None and t >= self.end_time - 1e-6:
                        break
                    if kept % self.frame_stride == 0:
                        yield VideoFrame(clip, float(t), frame.to_image())
                    kept += 1
            except av.error.FFmpegError as e:
                raise VideoClipError(
                    f"{clip}: decoding stopped after {decoded} frames ({type(e).__name__}: {e})"
                ) from e
            if decoded == 0 and self.start_time == 0:
                raise VideoClipError(f"{clip}: no frame could be decoded")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, clips={len(self)}, frame_stride={self.frame_stride}, "
            f"start_time={self.start_time}, end_time={self.end_time})"
        )


def list_videos(folder: Path) -> list[str]:
    """The clip names under ``folder`` (recursive, following links, hidden entries skipped), relative POSIX."""
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(folder).as_posix()
        names += [f if rel == "." else f"{rel}/{f}" for f in filenames if is_video_name(f)]
    return names
