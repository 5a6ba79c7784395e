"""Pack a folder of images (or an FFHQ download, a zip, or video clips) into a stylegan2-ada dataset_tool zip.

    python scripts/prepare_dataset.py source=DIR_OR_FFHQ_TREE out=FILE.zip resolution=256 \\
        [resize_filter=box] [channels=3] [workers=2] [overwrite=false] [max_images=null] [compress_level=0] \\
        [use_labels=null] [crop=null]
    python scripts/prepare_dataset.py source=CLIP.mp4_OR_DIR_OF_CLIPS out=FILE.zip resolution=[64,128] \\
        [frame_stride=1] [start_time=0] [end_time=null] [crop=null] ...

The zip has what NVlabs' ``dataset_tool.py`` writes: ``00000/img00000000.png``, ``00000/img00000001.png``, ...
(PNGs named by a running index, 1000 per folder) and ``dataset.json`` with
``{"labels": null}`` or ``{"labels": [["00000/img00000000.png", 3], ...]}``, so it loads with
``data=folder data.root=FILE.zip`` here and with the stylegan2-ada/stylegan3 trainers. It also holds
``manifest.json``, which is printed at the end as well:

``count``, ``resolution`` ``[h, w]``, ``channels``, ``resize_filter``, ``skipped`` (the bad files,
by name, with the reason), ``sha256`` (over each image's decoded uint8 pixels in ``[C, H, W]`` order,
images in archive order: ``ImageFolderDataset(out)`` gives the same hash), ``source``, ``labels``,
``class_names`` (the class subfolders when the labels come from them, else null).

Keys: ``source`` (a folder searched recursively; an FFHQ root holding ``images1024x1024/`` (or
``thumbnails128x128/``) is read from that folder; or a zip), ``out`` (the ``.zip`` to write),
``resolution`` (int or ``[h, w]``, a StyleGAN size ``(b_h * 2**k, b_w * 2**k)``, e.g. 24, [48, 80] or
256, see src/utils/resolution.py; images are center-cropped to that aspect and resized, never
upsampled: smaller images are skipped), ``resize_filter`` (box lanczos bicubic
bilinear nearest; box is the StyleGAN2 paper's), ``channels`` (1, 3 or 4), ``workers`` (decoding
processes; 0 = in this process), ``overwrite`` (replace an existing ``out``), ``max_images`` (stop
after this many images), ``compress_level`` (PNG zlib level 0-9; 0 as dataset_tool).

``crop`` (null, or ``[x, y, width, height]`` in source pixels): cut that box out of every image or
frame before the aspect crop and resize (an image the box does not fit in is skipped and listed).

**Video clips** (a file with a video extension, or a folder holding clips and no images; any container
and codec PyAV decodes: mp4, mov, mkv, webm, avi, ...; see src/datamodules/readers/video.py): every
chosen frame becomes one image, clips in sorted path order, frames in time order. ``start_time`` and
``end_time`` (seconds; end exclusive, null = to the end) pick a time range in each clip,
``frame_stride`` keeps every n-th frame of it (neighbouring frames are near duplicates; the
StyleGAN2-in-a-Nutshell rain-drop model was trained on frames of a clip). ``manifest.json`` then also
holds ``video`` (the clips and these options) and ``frames``: ``[archive name, clip, time in s]`` per
image. A clip that cannot be opened, or stops decoding, is listed in ``skipped`` (frames decoded
before the failure are kept); a frame the crop or size rules refuse lists its clip and skips the rest
of it. Frames are decoded in this process (FFmpeg's own threads); ``workers`` applies to image files.
With ``use_labels=true`` each top-level subfolder of the clip folder is a class.

``use_labels`` (null: carry over the labels of a ``dataset.json`` in the source (folder or zip) in
dataset_tool's format, when there is one; true: those, else one class per top-level subfolder of
the source folder, class index = position in the sorted subfolder names (``manifest.json`` lists
them as ``class_names``), and an image directly in the folder is an error; false: write
``"labels": null``). The same parser reads labels here and in ``src/datamodules/readers/``. The
zip is written to a temporary file next to ``out`` and renamed when complete, so ``out`` is never
left half-written. Bad files (corrupt, empty, too small) are skipped and listed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from src.datamodules.labels import subfolder_labels
from src.datamodules.readers import (
    FFHQ_SUBFOLDERS,
    RESIZE_FILTERS,
    VIDEO_EXTENSIONS,
    BadImageError,
    FolderSource,
    VideoClipError,
    VideoSource,
    ZipSource,
    archive_name,
    convert_image,
    decode_image,
    is_video_name,
    list_videos,
    open_source,
)
from src.utils.cli import console_entry, parse_key_values
from src.utils.io import atomic_write
from src.utils.resolution import parse_resolution

DEFAULTS = dict(
    source=None,
    out=None,
    resolution=256,
    resize_filter="box",
    channels=3,
    workers=2,
    overwrite=False,
    max_images=None,
    compress_level=0,
    use_labels=None,
    crop=None,
    frame_stride=1,
    start_time=0,
    end_time=None,
)
VIDEO_KEYS = ("frame_stride", "start_time", "end_time")

PROG = "prepare_dataset.py"
_PNG_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def fail(message: str) -> SystemExit:
    return SystemExit(f"{PROG}: {message}")


def parse_args(argv: list[str]):
    cfg = parse_key_values(argv, DEFAULTS, PROG, required={"source": "DIR_OR_ZIP", "out": "FILE.zip"}, doc=__doc__)
    if not str(cfg.out).endswith(".zip"):
        raise fail(f"out={cfg.out}: the output must be a .zip file")
    res = OmegaConf.to_object(cfg.resolution) if OmegaConf.is_list(cfg.resolution) else cfg.resolution
    try:
        cfg.resolution = list(parse_resolution(res, "resolution"))
    except ValueError as e:
        raise fail(str(e)) from None
    if cfg.resize_filter not in RESIZE_FILTERS:
        raise fail(f"resize_filter={cfg.resize_filter!r}: expected one of {', '.join(RESIZE_FILTERS)}")
    if cfg.channels not in _PNG_MODES:
        raise fail(f"channels={cfg.channels!r}: expected 1, 3 or 4")
    if not isinstance(cfg.workers, int) or cfg.workers < 0:
        raise fail(f"workers={cfg.workers!r}: expected a non-negative integer")
    if cfg.max_images is not None and (not isinstance(cfg.max_images, int) or cfg.max_images < 1):
        raise fail(f"max_images={cfg.max_images!r}: expected a positive integer or null")
    if not isinstance(cfg.compress_level, int) or not 0 <= cfg.compress_level <= 9:
        raise fail(f"compress_level={cfg.compress_level!r}: expected 0-9")
    if cfg.use_labels not in (None, True, False):
        raise fail(f"use_labels={cfg.use_labels!r}: expected true, false or null")
    if cfg.crop is not None:
        crop = OmegaConf.to_object(cfg.crop) if OmegaConf.is_list(cfg.crop) else cfg.crop
        ints = isinstance(crop, list) and len(crop) == 4 and all(type(v) is int for v in crop)
        if not ints or not isinstance(crop, list) or crop[0] < 0 or crop[1] < 0 or crop[2] < 1 or crop[3] < 1:
            raise fail(f"crop={crop!r}: expected [x, y, width, height] in pixels (x, y >= 0; sides >= 1) or null")
    if not isinstance(cfg.frame_stride, int) or isinstance(cfg.frame_stride, bool) or cfg.frame_stride < 1:
        raise fail(f"frame_stride={cfg.frame_stride!r}: expected a positive integer")
    if not _seconds(cfg.start_time):
        raise fail(f"start_time={cfg.start_time!r}: expected seconds >= 0")
    if cfg.end_time is not None and (not _seconds(cfg.end_time) or cfg.end_time <= cfg.start_time):
        raise fail(f"end_time={cfg.end_time!r}: expected seconds later than start_time={cfg.start_time}, or null")
    return cfg


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def open_input(source: str | Path, cfg=None) -> FolderSource | ZipSource | VideoSource:
    """The source as a reader source: a video clip or a folder of clips (and no images) ->
    :class:`VideoSource` with ``cfg``'s frame options; an FFHQ root is read from its image subfolder."""
    path = Path(source).expanduser()
    if not path.exists():
        raise fail(f"source={path}: does not exist")
    video = dict(frame_stride=1, start_time=0, end_time=None) if cfg is None else {k: cfg[k] for k in VIDEO_KEYS}
    if path.is_file() and is_video_name(path.name):
        return _video_source(path, video)
    layout = "ffhq" if path.is_dir() and any((path / s).is_dir() for s in FFHQ_SUBFOLDERS) else None
    clips = list_videos(path) if path.is_dir() and layout is None else []
    try:
        src = open_source(path, layout)
    except (ValueError, FileNotFoundError) as e:
        if clips:
            return _video_source(path, video)
        hint = f" or a video clip ({', '.join(VIDEO_EXTENSIONS)})" if path.is_file() else ""
        raise fail(str(e).replace("data.root", "source") + hint) from None
    if clips:
        raise fail(
            f"source={path}: holds both images ({len(src)}) and video clips ({len(clips)}, e.g. {clips[0]}); "
            "point source at a folder of one kind"
        )
    changed = [k for k in VIDEO_KEYS if video[k] != DEFAULTS[k]]
    if changed:
        raise fail(f"{changed[0]}={video[changed[0]]}: applies to video clips, but source={path} holds images")
    return src


def _video_source(path: Path, options: dict[str, Any]) -> VideoSource:
    try:
        return VideoSource(path, **options)
    except ValueError as e:
        raise fail(str(e)) from None


def source_labels(src: FolderSource | ZipSource | VideoSource, use_labels: bool | None = None) -> list[int] | None:
    """The class index of each listed source image, or None to write ``"labels": null``.

    ``use_labels`` null: the labels of a ``dataset.json`` in the source, when it has one; true: those,
    else (folders) one class per top-level subfolder in sorted name order, and no labels is an error;
    false: none. The readers' parser reads every ``dataset.json`` (:func:`src.datamodules.labels.parse_labels`).
    """
    if use_labels is False:
        return None
    if isinstance(src, VideoSource):  # labels per clip: only from class subfolders
        if not use_labels:
            return None
        try:
            clip_labels, src.class_names = subfolder_labels(src.clips, str(src.root))
        except ValueError as e:
            raise fail(f"use_labels=true: {e}") from None
        return clip_labels
    try:
        labels = src.class_labels() if use_labels else src.labels
    except ValueError as e:
        raise fail(f"use_labels={'true' if use_labels else 'null'}: {e}") from None
    if labels is None and use_labels:
        raise fail(
            f'use_labels=true but {src.root} has no labels (a zip without dataset.json, or "labels": null in it)'
        )
    return labels


# ------------------------------------------------------------------------------------------------
# work (in worker processes)
# ------------------------------------------------------------------------------------------------

_SOURCE: FolderSource | ZipSource | None = None
_OPTS: dict[str, Any] = {}


def _init(source: FolderSource | ZipSource, opts: dict[str, Any]) -> None:
    global _SOURCE, _OPTS
    _SOURCE, _OPTS = source, opts


def _encode(pixels: np.ndarray, channels: int, compress_level: int) -> tuple[bytes, bytes]:
    """uint8 ``[C, H, W]`` -> (PNG bytes, raw pixel bytes in ``[C, H, W]`` order for the manifest hash)."""
    hwc = np.ascontiguousarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(hwc, _PNG_MODES[channels]).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue(), pixels.tobytes()


def _convert(i: int) -> tuple[int, bytes | None, bytes | None, str | None]:
    """Source image ``i`` -> (i, PNG bytes, raw pixels [C, H, W], None) or (i, None, None, reason)."""
    assert _SOURCE is not None
    name = _SOURCE.name(i)
    try:
        try:
            data = _SOURCE.read(i)
        except OSError as e:
            raise BadImageError(f"{name}: cannot read ({e})") from e
        img = decode_image(
            data, _OPTS["channels"], tuple(_OPTS["resolution"]), _OPTS["resize_filter"], name=name, crop=_OPTS["crop"]
        )
    except BadImageError as e:
        return i, None, None, str(e)
    return i, *_encode(img.numpy(), _OPTS["channels"], _OPTS["compress_level"]), None


Item = tuple[str, "bytes | None", "bytes | None", "str | None", "int | None", "list | None"]


def _image_items(src: FolderSource | ZipSource, opts: dict[str, Any], labels, workers: int, stack) -> Iterator[Item]:
    """(source name, PNG, pixels, reason, label, None) per image, in source order (``workers`` processes)."""
    results: Iterator[tuple[int, bytes | None, bytes | None, str | None]]
    if workers > 0:
        pool = multiprocessing.get_context().Pool(workers, initializer=_init, initargs=(src, opts))
        stack.callback(pool.join)
        stack.callback(pool.terminate)  # runs first
        results = pool.imap(_convert, range(len(src)), chunksize=8)
    else:
        _init(src, opts)
        results = map(_convert, range(len(src)))
    for i, png, pixels, reason in results:
        yield src.name(i), png, pixels, reason, None if labels is None else labels[i], None


def _frame_items(src: VideoSource, opts: dict[str, Any], labels) -> Iterator[Item]:
    """(frame name, PNG, pixels, reason, label, [clip, time]) per chosen frame. A clip that fails to open
    or decode, or whose frame the crop/size rules refuse, gives one item with the reason (its first
    refused frame ends the clip: every frame of a clip has the same size)."""
    for k, clip in enumerate(src.clips):
        label = None if labels is None else labels[k]
        try:
            for frame in src.clip_frames(clip):
                try:
                    img = convert_image(
                        frame.image, opts["channels"], tuple(opts["resolution"]), opts["resize_filter"],
                        frame.name, crop=opts["crop"],
                    )  # fmt: skip
                except BadImageError as e:
                    yield clip, None, None, f"{e} (the rest of the clip is skipped)", None, None
                    break
                png, pixels = _encode(img.numpy(), opts["channels"], opts["compress_level"])
                yield frame.name, png, pixels, None, label, [clip, round(frame.time, 6)]
        except VideoClipError as e:
            yield clip, None, None, str(e), None, None


# ------------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------------


class Progress:
    """tqdm on stderr when installed, else a line every ~2 seconds."""

    def __init__(self, total: int | None) -> None:
        self.total, self.n, self.t0, self.last = total, 0, time.perf_counter(), 0.0
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            self.bar = None

    def update(self) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self.last > 2.0 or self.n == self.total:
            self.last = now
            rate = self.n / max(now - self.t0, 1e-9)
            print(f"  {self.n}/{self.total or '?'} images ({rate:.0f} img/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def prepare(cfg) -> dict[str, Any]:
    out = Path(cfg.out).expanduser()
    if out.exists() and not cfg.overwrite:
        raise fail(f"out={out} already exists; pass overwrite=true to replace it")
    src = open_input(cfg.source, cfg)
    labels = source_labels(src, cfg.use_labels)
    class_names = src.class_names if labels is not None else None
    video = isinstance(src, VideoSource)
    opts: dict[str, Any] = dict(
        channels=int(cfg.channels),
        resolution=list(cfg.resolution),
        resize_filter=str(cfg.resize_filter),
        compress_level=int(cfg.compress_level),
        crop=None if cfg.crop is None else list(cfg.crop),
    )
    available = src.estimated_frames() if isinstance(src, VideoSource) else len(src)
    total = available if cfg.max_images is None or available is None else min(available, int(cfg.max_images))
    what = f"{len(src)} video clip(s)" if video else f"{len(src)} images"
    print(
        f"prepare_dataset: {what} in {src.root} -> {out} at {opts['resolution'][0]}x"
        f"{opts['resolution'][1]} ({opts['resize_filter']}), "
        + (f"every {cfg.frame_stride} frame(s) from {cfg.start_time} s" if video else f"{cfg.workers} workers"),
        file=sys.stderr,
        flush=True,
    )

    def write(f) -> dict[str, Any]:
        digest = hashlib.sha256()
        skipped: list[dict[str, str]] = []
        out_labels: list[list[Any]] = []
        frames: list[list[Any]] = []
        count = 0
        progress = Progress(total)
        with contextlib.ExitStack() as stack:
            stack.callback(progress.close)
            items = (
                _frame_items(src, opts, labels)
                if isinstance(src, VideoSource)
                else _image_items(src, opts, labels, cfg.workers, stack)
            )
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
                for name, png, pixels, reason, label, frame in items:
                    if png is None:
                        skipped.append({"file": name, "reason": reason or ""})
                        continue
                    arc = archive_name(count)
                    z.writestr(arc, png)
                    assert pixels is not None  # an encoded image has both its PNG and its pixels
                    digest.update(pixels)
                    if labels is not None:
                        out_labels.append([arc, label])
                    if frame is not None:
                        frames.append([arc, *frame])
                    count += 1
                    progress.update()
                    if cfg.max_images is not None and count >= cfg.max_images:
                        break
                if count == 0:
                    raise fail(
                        f"source={src.root}: none of its {'frames' if video else 'images'} could be converted "
                        f"(first problem: {skipped[0]['reason'] if skipped else 'none listed'})"
                    )
                manifest = {
                    "format": "stylegan2-ada dataset_tool zip",
                    "source": str(src.root),
                    "count": count,
                    "resolution": list(opts["resolution"]),
                    "channels": opts["channels"],
                    "resize_filter": opts["resize_filter"],
                    "crop": opts["crop"],
                    "labels": labels is not None,
                    "class_names": class_names,
                    "skipped_count": len(skipped),
                    "skipped": skipped,
                    "sha256": digest.hexdigest(),
                    "hash_of": "uint8 pixels of each image in [C, H, W] order, in archive order",
                }
                if isinstance(src, VideoSource):
                    manifest["video"] = {
                        "clips": src.clips,
                        "frame_stride": src.frame_stride,
                        "start_time": src.start_time,
                        "end_time": src.end_time,
                    }
                    manifest["frames"] = frames
                z.writestr("dataset.json", json.dumps({"labels": out_labels if labels is not None else None}))
                z.writestr("manifest.json", json.dumps(manifest, indent=2))
        return manifest

    box: dict[str, Any] = {}
    atomic_write(out, lambda f: box.update(write(f)))
    return box


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    manifest = prepare(cfg)
    if manifest["skipped_count"]:
        names = ", ".join(s["file"] for s in manifest["skipped"][:5])
        print(
            f"prepare_dataset: skipped {manifest['skipped_count']} bad file(s): {names}"
            + (", ..." if manifest["skipped_count"] > 5 else ""),
            file=sys.stderr,
        )
    print(json.dumps(manifest, indent=2))
    return manifest


cli = console_entry(main)

if __name__ == "__main__":
    main()
