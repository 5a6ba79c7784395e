"""Image readers: decode any image file to a uint8 tensor, list images in a folder or a
stylegan2-ada ``dataset_tool.py`` zip, and serve them as a map-style dataset.

``decode_image`` normalises every PIL mode to 1 (luminance), 3 (RGB) or 4 (RGBA) channels, then
center-crops to the target aspect ratio and resizes with a named filter. ``box`` is the default:
FFHQ-256 FIDs depend on the downscaling filter, and the StyleGAN2 paper numbers come from
box-filtered data (stylegan2-ada-pytorch ``dataset_tool.py --resize-filter=box``, issue #283). Images
smaller than the target are refused rather than silently upsampled, unless ``allow_upscale=True``.

Sources list files deterministically (sorted relative POSIX paths) and return raw bytes; a zip is
opened lazily in each process, so DataLoader workers never share a zip handle across ``fork``.
Labels (``use_labels``) come from a ``dataset.json`` in the zip or folder, else from a folder's
top-level subfolders, one class each in sorted name order (``src/datamodules/labels.py``).

Bad inputs (:class:`ImageFolderDataset`): corrupt, truncated, zero-byte or non-image files and
images smaller than the target are skipped and counted (``bad_files``), with one warning per
dataset object (that is, per loader process) naming the file; ``strict=True`` raises
:class:`BadImageError` with the path instead. Files without an image extension are not listed at
all and are counted in the source's ``ignored``.
"""

from __future__ import annotations

import abc

import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from torch.utils.data import Dataset

from src.datamodules.labels import parse_labels, subfolder_labels
from src.utils.resolution import parse_size

__all__ = [
    "RESIZE_FILTERS",
    "IMAGE_EXTENSIONS",
    "FFHQ_SUBFOLDERS",
    "BadImageError",
    "DataRootNotFoundError",
    "ImageTooSmallError",
    "decode_image",
    "is_image_name",
    "center_crop_box",
    "FolderSource",
    "ZipSource",
    "open_source",
    "ImageFolderDataset",
]

RESIZE_FILTERS: tuple[str, ...] = ("box", "lanczos", "bicubic", "bilinear", "nearest")
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
# The official FFHQ download's image trees, in order of preference (NVlabs/ffhq-dataset).
FFHQ_SUBFOLDERS: tuple[str, ...] = ("images1024x1024", "thumbnails128x128")

_RESAMPLE = {
    "box": PIL.Image.Resampling.BOX,
    "lanczos": PIL.Image.Resampling.LANCZOS,
    "bicubic": PIL.Image.Resampling.BICUBIC,
    "bilinear": PIL.Image.Resampling.BILINEAR,
    "nearest": PIL.Image.Resampling.NEAREST,
}
_MAX_NAMED = 5  # bad files named in one warning
LABEL_FILE = "dataset.json"  # dataset_tool's label file, at the top of a zip or folder


class BadImageError(ValueError):
    """A file that cannot serve as a training image; the message names the file."""


class DataRootNotFoundError(FileNotFoundError, ValueError):
    """``data.root`` (or a path a layout needs) does not exist. Also a ``ValueError``, so start-up
    treats it like any other bad config value (one line naming the path)."""


class ImageTooSmallError(BadImageError):
    """An image smaller than the target resolution (after the aspect-ratio crop)."""


def is_image_name(name: str) -> bool:
    """True for a name with one of :data:`IMAGE_EXTENSIONS` (case-insensitive), not hidden."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


# ------------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------------


def _to_8bit_gray(img: PIL.Image.Image, name: str) -> PIL.Image.Image:
    """High-bit-depth single-channel modes -> ``L``, scaled (not clipped) to 8 bit.

    ``I;16*`` and ``I`` are read as 16-bit data (0..65535 -> 0..255, rounded; ``I`` values outside
    that range are clipped), ``F`` as floats in ``[0, 1]``.
    """
    a = np.asarray(img)
    if img.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0) * 255.0
    else:
        a = a.astype(np.float64) * (255.0 / 65535.0)
    return PIL.Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")


def _normalise_mode(img: PIL.Image.Image, channels: int, name: str) -> PIL.Image.Image:
    """Any PIL mode -> ``L`` (channels 1), ``RGB`` (3) or ``RGBA`` (4), 8 bit per channel."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        img = _to_8bit_gray(img, name)
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("LA", "La"):
        img = img.convert("LA")
    elif mode in ("RGBA", "RGBa"):
        img = img.convert("RGBA")
    elif mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    mode = img.mode  # now one of L, LA, RGB, RGBA
    if channels == 1:
        # ITU-R 601-2 luma; alpha is dropped (no compositing), as dataset_tool's convert('L')
        return img if mode == "L" else img.convert("RGB").convert("L") if mode == "RGBA" else img.convert("L")
    if channels == 3:
        return img if mode == "RGB" else img.convert("RGB")  # alpha dropped, as dataset_tool
    return img if mode == "RGBA" else img.convert("RGBA")  # alpha 255 where the image has none


def _target_size(resolution: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        h = w = resolution
    else:
        h, w = (int(s) for s in resolution)
    if h < 1 or w < 1:
        raise ValueError(f"resolution={resolution!r}: sides must be positive")
    return h, w


def center_crop_box(width: int, height: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """The largest centered ``(left, top, right, bottom)`` box of aspect ``target_w / target_h``."""
    if width * target_h > height * target_w:  # wider than the target: crop the sides
        cw, ch = max(1, round(height * target_w / target_h)), height
    else:  # taller (or equal): crop top and bottom
        cw, ch = width, max(1, round(width * target_h / target_w))
    left, top = (width - cw) // 2, (height - ch) // 2
    return left, top, left + cw, top + ch


def decode_image(
    data: bytes,
    channels: int,
    resolution: int | tuple[int, int] | None = None,
    resize_filter: str = "box",
    name: str = "<bytes>",
    *,
    allow_upscale: bool = False,
) -> torch.Tensor:
    """Bytes of an image file -> uint8 tensor ``[channels, H, W]``.

    Args:
        data: the file's bytes (PNG, JPEG, BMP, WebP, TIFF, GIF (first frame), ...).
        channels: 1 (luminance, ITU-R 601-2), 3 (RGB) or 4 (RGBA; alpha 255 when the image has none).
            Alpha is dropped for 1 and 3 channels. ``P`` images with a transparent index give alpha 0
            there; ``I;16`` is scaled to 8 bit (65535 -> 255), ``F`` is read as ``[0, 1]``.
        resolution: ``(height, width)`` or an int; ``None`` keeps the decoded size. The image is
            center-cropped to the target aspect ratio, then resized with ``resize_filter``
            (alpha-premultiplied for RGBA, as Pillow does).
        resize_filter: one of :data:`RESIZE_FILTERS`; ``box`` (area averaging) by default.
        name: the file's name, used in error messages.
        allow_upscale: resize images smaller than the target up instead of raising.

    Raises:
        BadImageError: zero-byte, truncated, corrupt or non-image data, or (as
            :class:`ImageTooSmallError`) an image smaller than the target.
    """
    if channels not in (1, 3, 4):
        raise ValueError(f"channels={channels!r}: expected 1, 3 or 4")
    if resize_filter not in _RESAMPLE:
        raise ValueError(f"resize_filter={resize_filter!r}: expected one of {', '.join(RESIZE_FILTERS)}")
    if not data:
        raise BadImageError(f"{name}: empty file (0 bytes)")
    try:
        with PIL.Image.open(io.BytesIO(data)) as img:
            img.load()  # decodes fully; truncated data raises here (LOAD_TRUNCATED_IMAGES stays off)
            img = _normalise_mode(img, channels, name)
    except BadImageError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError,
            PIL.Image.DecompressionBombError) as e:  # fmt: skip
        raise BadImageError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e

    if resolution is not None:
        th, tw = _target_size(resolution)
        box = center_crop_box(img.width, img.height, th, tw)
        cw, ch = box[2] - box[0], box[3] - box[1]
        if (cw < tw or ch < th) and not allow_upscale:
            raise ImageTooSmallError(
                f"{name}: image {img.width}x{img.height} (WxH) is smaller than the target {tw}x{th} "
                f"(crop {cw}x{ch}); images are not upsampled (allow_upscale=True to do so)"
            )
        if (cw, ch) == (tw, th):
            img = img.crop(box) if (cw, ch) != img.size else img
        else:
            img = img.resize((tw, th), resample=_RESAMPLE[resize_filter], box=box)

    a = np.array(img, dtype=np.uint8)  # a writable copy
    if a.ndim == 2:
        return torch.from_numpy(a).unsqueeze(0)
    return torch.from_numpy(a).permute(2, 0, 1).contiguous()


# ------------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------------


class FolderSource:
    """Every image file under ``root`` (recursive, following links), sorted by relative POSIX path.

    Hidden files and folders (``.name``) are skipped; files without an image extension are not
    listed and are counted in :attr:`ignored` (a ``dataset.json`` at the top is not counted).
    Labels are read on first use: :attr:`labels` (``dataset.json``) and :meth:`class_labels`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DataRootNotFoundError(f"data.root: {self.root} does not exist")
        if not self.root.is_dir():
            raise ValueError(f"data.root: {self.root} is neither a folder nor a .zip file")
        names: list[str] = []
        ignored = 0
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for f in filenames:
                if is_image_name(f):
                    names.append(f if rel == "." else f"{rel}/{f}")
                elif not (rel == "." and f == LABEL_FILE):
                    ignored += 1
        if not names:
            raise ValueError(
                f"data.root: no images ({', '.join(IMAGE_EXTENSIONS)}) under {self.root}"
                + (f" ({ignored} other files ignored)" if ignored else "")
            )
        self._names = sorted(names)
        self.ignored = ignored
        self._json_labels: list[int] | None = None
        self._json_read = False
        self.class_names: list[str] | None = None  # the class subfolders, once class_labels() read them

    @property
    def label_file(self) -> Path | None:
        """``dataset.json`` at the top of the folder, or None when there is none."""
        path = self.root / LABEL_FILE
        return path if path.is_file() else None

    @property
    def labels(self) -> list[int] | None:
        """The labels of ``dataset.json`` at the top of the folder, per listed image, read on first use;
        None without that file or for ``"labels": null`` (as :attr:`ZipSource.labels`)."""
        if not self._json_read:
            meta = self.label_file
            self._json_labels = None if meta is None else parse_labels(meta.read_bytes(), self._names, str(meta))
            self._json_read = True
        return self._json_labels

    def class_labels(self) -> list[int] | None:
        """The labels ``use_labels`` reads: :attr:`labels` when the folder has a ``dataset.json`` (it wins),
        else one class per top-level subfolder in sorted name order (:func:`subfolder_labels`, which
        raises naming an image directly in the folder); the latter also sets :attr:`class_names`."""
        if self.label_file is not None:
            return self.labels
        labels, self.class_names = subfolder_labels(self._names, str(self.root))
        return labels

    def __len__(self) -> int:
        return len(self._names)

    def name(self, i: int) -> str:
        return self._names[i]

    def path(self, i: int) -> Path:
        return self.root / self._names[i]

    def read(self, i: int) -> bytes:
        return self.path(i).read_bytes()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, images={len(self)}, ignored={self.ignored})"


class ZipSource:
    """The images in a zip (stylegan2-ada ``dataset_tool.py`` output or any zip of images).

    Labels come from ``dataset.json`` (``{"labels": [[fname, int], ...]}`` or ``"labels": null``)
    when present; every listed image must then have an integer label. The zip is opened lazily in
    each process (and reopened after ``fork``/unpickling), never shared between workers.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DataRootNotFoundError(f"data.root: {self.root} does not exist")
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None
        try:
            with zipfile.ZipFile(self.root) as z:
                infos = [i for i in z.infolist() if not i.is_dir()]
                meta = z.read(LABEL_FILE) if LABEL_FILE in z.namelist() else None
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"data.root: {self.root} is not a readable zip file ({e})") from e
        names, ignored = [], 0
        for info in infos:
            if info.filename.startswith("__MACOSX/") or not is_image_name(info.filename):
                ignored += 1 if info.filename not in (LABEL_FILE, "manifest.json") else 0
            else:
                names.append(info.filename)
        if not names:
            raise ValueError(f"data.root: no images ({', '.join(IMAGE_EXTENSIONS)}) in {self.root}")
        self._names = sorted(names)
        self.ignored = ignored
        self.labels = self._parse_labels(meta)
        self.class_names: list[str] | None = None  # a zip's labels come from dataset.json only

    def class_labels(self) -> list[int] | None:
        """The labels ``use_labels`` reads: a zip's come from its ``dataset.json`` only (:attr:`labels`)."""
        return self.labels

    def _parse_labels(self, meta: bytes | None) -> list[int] | None:
        """The zip's ``dataset.json`` labels per listed image (:func:`parse_labels`); None without them."""
        return None if meta is None else parse_labels(meta, self._names, f"{self.root}/{LABEL_FILE}")

    def __len__(self) -> int:
        return len(self._names)

    def name(self, i: int) -> str:
        return self._names[i]

    def _file(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.root)  # a forked copy's handle is abandoned, not closed
            self._pid = os.getpid()
        return self._zip

    def read(self, i: int) -> bytes:
        return self._file().read(self._names[i])

    def close(self) -> None:
        if self._zip is not None and self._pid == os.getpid():
            self._zip.close()
        self._zip = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_zip": None, "_pid": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, images={len(self)}, labels={self.labels is not None})"


def _has_images(folder: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(is_image_name(f) for f in filenames):
            return True
    return False


def open_source(root: str | Path, layout: str | None = None) -> FolderSource | ZipSource:
    """``root`` as a source: a ``.zip`` file -> :class:`ZipSource`, a folder -> :class:`FolderSource`.

    ``layout="ffhq"``: a folder holding ``images1024x1024`` (preferred) or ``thumbnails128x128`` is
    read from that subfolder; a folder with neither and no images raises naming the path.
    """
    path = Path(root).expanduser()
    if not path.exists():
        raise DataRootNotFoundError(f"data.root: {path} does not exist")
    if layout not in (None, "ffhq"):
        raise ValueError(f"layout={layout!r}: expected null or 'ffhq'")
    if path.is_file():
        if zipfile.is_zipfile(path):
            return ZipSource(path)
        raise ValueError(f"data.root: {path} is a file but not a zip; point data.root at a folder or a .zip")
    if layout == "ffhq":
        for sub in FFHQ_SUBFOLDERS:
            if (path / sub).is_dir():
                return FolderSource(path / sub)
        if not _has_images(path):
            raise ValueError(
                f"data.root: {path} is not an FFHQ folder: it holds no images and no "
                f"{' or '.join(FFHQ_SUBFOLDERS)} subfolder (or use a dataset_tool .zip)"
            )
    return FolderSource(path)


# ------------------------------------------------------------------------------------------------
# dataset
# ------------------------------------------------------------------------------------------------


class SkippingImageDataset(Dataset, abc.ABC):
    """The bad-file policy every image dataset shares (one mechanism for all readers).

    A file that fails to read or decode is skipped: it is recorded in :attr:`bad_files`, one warning
    names the first one, and the next good index is served instead (wrapping around), so a decoding
    error in a worker never ends the epoch. With ``strict`` the first bad file raises
    :class:`BadImageError` with its path. Subclasses provide ``__len__``, :meth:`name`,
    :meth:`_load` (raise :class:`BadImageError`), :meth:`_label` and :attr:`where`.
    """

    ignored: int = 0  # files that were not listed at all (no image extension)

    def __init__(self, strict: bool = False) -> None:
        self.strict = bool(strict)
        self.bad_files: list[str] = []  # bad files met by this process
        self._bad: set[int] = set()
        self._warned = False

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """Where the images come from, for messages."""

    @abc.abstractmethod
    def name(self, i: int) -> str:
        """Item ``i``'s file name, as messages and :attr:`bad_files` show it."""

    @abc.abstractmethod
    def _load(self, i: int) -> torch.Tensor:
        """Decode item ``i`` to uint8 ``[C, H, W]``; raise :class:`BadImageError` for a bad file."""

    def _label(self, i: int) -> int:
        return 0

    def _record_bad(self, i: int, error: BadImageError) -> None:
        self._bad.add(i)
        self.bad_files.append(self.name(i))
        if not self._warned:
            self._warned = True
            extra = f"; {self.ignored} non-image files were ignored" if self.ignored else ""
            warnings.warn(
                f"gamut: skipping bad image in {self.where}: {error}. Further bad files are "
                f"skipped and counted (dataset.bad_files){extra}; set data.strict=true to stop instead",
                stacklevel=3,
            )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index %= n
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            try:
                image = self._load(i)
            except BadImageError as e:
                if self.strict:
                    raise BadImageError(f"{self.where}/{e} (data.strict=true)") from e
                self._record_bad(i, e)
                continue
            return {"image": image, "label": torch.tensor(self._label(i), dtype=torch.int64)}
        raise BadImageError(f"data.root: none of the {n} images in {self.where} could be decoded")

    def summary(self) -> str:
        """One line on bad and ignored files seen so far by this process ('' when none)."""
        parts = []
        if self.bad_files:
            named = ", ".join(self.bad_files[:_MAX_NAMED]) + (", ..." if len(self.bad_files) > _MAX_NAMED else "")
            parts.append(f"{len(self.bad_files)} bad image(s) skipped ({named})")
        if self.ignored:
            parts.append(f"{self.ignored} non-image file(s) ignored")
        return f"{self.where}: " + "; ".join(parts) if parts else ""


class ImageFolderDataset(SkippingImageDataset):
    """Images from a folder or zip, decoded, cropped and resized on the fly.

    Args:
        root: a folder (searched recursively) or a ``.zip`` (key ``data.root``).
        resolution: int or ``[height, width]``, each side ``4 * 2**k`` (``data.resolution``).
        channels: 1, 3 or 4 (the color space's ``input_channels``).
        resize_filter: one of :data:`RESIZE_FILTERS` (``data.resize_filter``).
        use_labels: return class labels (``data.use_labels``): from the ``dataset.json`` of a zip or
            folder, else (folders) one class per top-level subfolder in sorted name order; an image
            directly in such a folder is a ``ValueError`` naming it.
        strict: raise on the first bad file instead of skipping it (``data.strict``).
        max_images: keep a subset of this size: ``max_images`` indices drawn with a fixed seed (0),
            kept in sorted order (as stylegan2-ada's ``--max-size``); ``None`` keeps all.
        allow_upscale: upsample images smaller than the target instead of treating them as bad.
        layout: ``"ffhq"`` to accept the official FFHQ tree (see :func:`open_source`).

    Items are ``{"image": uint8 [C, H, W], "label": int64 []}`` (label 0 without labels). A bad file
    is recorded in :attr:`bad_files` and the next good index is returned instead (wrapping around),
    so a decoding error in a loader worker never ends the epoch; each dataset object warns once.
    """

    def __init__(
        self,
        root: str | Path,
        resolution: int | Sequence[int] = 64,
        channels: int = 3,
        resize_filter: str = "box",
        use_labels: bool = False,
        strict: bool = False,
        max_images: int | None = None,
        allow_upscale: bool = False,
        layout: str | None = None,
    ) -> None:
        if isinstance(resolution, Sequence) and not isinstance(resolution, str):
            resolution = [int(s) for s in resolution]
        self.resolution: tuple[int, int] = parse_size(resolution, "data.resolution")
        if channels not in (1, 3, 4):
            raise ValueError(f"data.dataset.channels={channels!r}: expected 1, 3 or 4")
        if resize_filter not in RESIZE_FILTERS:
            raise ValueError(f"data.resize_filter={resize_filter!r}: expected one of {', '.join(RESIZE_FILTERS)}")
        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
            raise ValueError(f"data.max_images={max_images!r}: expected a positive integer or null")
        self.channels = int(channels)
        self.resize_filter = resize_filter
        super().__init__(strict)
        self.allow_upscale = bool(allow_upscale)
        self.source = open_source(root, layout)

        n = len(self.source)
        if max_images is not None and max_images < n:
            keep = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:max_images]
            self._indices = sorted(keep.tolist())
        else:
            self._indices = list(range(n))

        self.use_labels = bool(use_labels)
        self._labels: list[int] | None = None
        self.num_classes = 0
        self.class_names: list[str] | None = None
        if self.use_labels:
            labels = self._source_labels()
            self._labels = [labels[i] for i in self._indices]
            self.num_classes = max(labels) + 1
            self.class_names = self.source.class_names

    def _source_labels(self) -> list[int]:
        """The source's labels; one ``ValueError`` naming ``data.use_labels`` and the file when there are none."""
        try:
            labels = self.source.class_labels()
        except ValueError as e:
            raise ValueError(f"data.use_labels=true: {e}") from e
        if labels is None:
            raise ValueError(
                f"data.use_labels=true but {self.source.root} has no labels (a zip needs dataset.json labels; "
                f"a folder needs class subfolders or a dataset.json with labels); set data.use_labels=false"
            )
        return labels

    @property
    def label_counts(self) -> torch.Tensor | None:
        """Images per class, int64 ``[num_classes]``, over the images used (after ``max_images``);
        None without labels."""
        if self._labels is None:
            return None
        return torch.bincount(torch.tensor(self._labels, dtype=torch.int64), minlength=self.num_classes)

    @property
    def ignored(self) -> int:
        """Files in the source that were not listed (no image extension)."""
        return int(getattr(self.source, "ignored", 0))

    def __len__(self) -> int:
        return len(self._indices)

    def name(self, i: int) -> str:
        return self.source.name(self._indices[i])

    def _load(self, i: int) -> torch.Tensor:
        j = self._indices[i]
        name = self.source.name(j)
        try:
            data = self.source.read(j)
        except OSError as e:
            raise BadImageError(f"{name}: cannot read ({e})") from e
        return decode_image(
            data, self.channels, self.resolution, self.resize_filter, name=name, allow_upscale=self.allow_upscale
        )

    def _label(self, i: int) -> int:
        return self._labels[i] if self._labels is not None else 0

    @property
    def where(self) -> str:
        return str(self.source.root)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.source!r}, resolution={list(self.resolution)}, channels={self.channels}, "
            f"resize_filter={self.resize_filter!r}, images={len(self)}, num_classes={self.num_classes})"
        )
