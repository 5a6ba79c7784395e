"""Datasets: map-style datasets over a source, with the bad-file policy every image dataset shares.

:class:`SkippingImageDataset` is that policy. :class:`ImageFolderDataset` serves a folder or zip
(:mod:`src.datamodules.readers.sources`) decoded by :func:`~src.datamodules.readers.decoding.decode_image`.

Bad inputs (:class:`ImageFolderDataset`): corrupt, truncated, zero-byte or non-image files and
images smaller than the target are skipped and counted (``bad_files``), with one warning per
dataset object (that is, per loader process) naming the file; ``strict=True`` raises
:class:`BadImageError` with the path instead. Files without an image extension are not listed at
all and are counted in the source's ``ignored``.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from src.datamodules.dataset import BaseImageDataset
from src.datamodules.readers.decoding import RESIZE_FILTERS, BadImageError, decode_image
from src.datamodules.readers.sources import open_source
from src.utils.resolution import parse_size

__all__ = ["SkippingImageDataset", "ImageFolderDataset"]

_MAX_NAMED = 5  # bad files named in one warning


class SkippingImageDataset(BaseImageDataset):
    """The bad-file policy every image dataset shares (one mechanism for all readers); an
    :class:`~src.datamodules.dataset.ImageDataset` whose ``bad_files`` and ``summary`` it fills.

    A file that fails to read or decode is skipped: it is recorded in :attr:`bad_files`, one warning
    names the first one, and the next good index is served instead (wrapping around), so a decoding
    error in a worker never ends the epoch. With ``strict`` the first bad file raises
    :class:`BadImageError` with its path. Subclasses provide ``__len__``, :meth:`name`,
    :meth:`_load` (raise :class:`BadImageError`), :meth:`_label` and :attr:`where`.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = bool(strict)
        self.bad_files: list[str] = []  # bad files met by this process
        self._bad: set[int] = set()
        self._warned = False
        self._first_error: BadImageError | None = None  # named when no image at all can be used

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
        if self._first_error is None:
            self._first_error = error
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
        raise BadImageError(
            f"data.root: none of the {n} images in {self.where} could be used; the first: {self._first_error}"
        )

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
        resolution: int or ``[height, width]``, any size; StyleGAN models check theirs (``data.resolution``).
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

    channels: int
    resolution: tuple[int, int]

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
        if max_images is not None and (
            isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1
        ):
            raise ValueError(f"data.max_images={max_images!r}: expected a positive integer or null")
        self.channels = int(channels)
        self.resize_filter = resize_filter
        super().__init__(strict)
        self.allow_upscale = bool(allow_upscale)
        self.source = open_source(root, layout)
        self.ignored = int(self.source.ignored)  # files in the source that were not listed (no image extension)

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
    def root(self) -> Path:  # type: ignore[override]  # a property: an attribute would change the cache's key
        """The folder or zip the images are read from (``data.root``; the FFHQ layout's image folder)."""
        return self.source.root

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
