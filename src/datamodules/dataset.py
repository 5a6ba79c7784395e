"""The data-set contract: what the loader, the metrics' feature cache and the callbacks read from a data set.

:class:`ImageDataset` declares it once. A data set is map-style (``len(ds)``, ``ds[i]``) and its
items are ``{"image": uint8 [C, H, W], "label": int64 []}``; beside them it tells:

- ``channels``: ``C`` of its images (the colour space's ``input_channels``); ``None``: not declared,
  nothing is checked;
- ``resolution``: ``(height, width)`` of its images; ``None``: not declared (the DataModule then
  uses ``data.resolution``, else the first image's size);
- ``num_classes`` (0: unconditional) and ``label_counts``, images per class (``None``: not known);
- ``root``: where the images come from, a folder or a zip (the metrics cache keys on it); ``None``
  for generated data;
- ``ignored`` (files not listed, e.g. without an image extension), ``bad_files`` (files skipped
  because they could not be decoded, by this process) and ``summary()``, one line on both.

Every data set gamut ships subclasses :class:`BaseImageDataset`, which holds the defaults
(undeclared size and channels, unconditional, no root, nothing ignored or bad), so it states only
what differs. Any other map-style object still loads: :func:`as_image_dataset` passes an
:class:`ImageDataset` through and wraps anything else in a :class:`ForeignDataset`, which supplies
the defaults; a data set that wants its size checked or its labels used implements the protocol.
Nothing in gamut probes a data set for optional attributes.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch.utils.data import Dataset

__all__ = [
    "ImageDataset",
    "MapStyleDataset",
    "BaseImageDataset",
    "ForeignDataset",
    "as_image_dataset",
    "torch_dataset",
]


@runtime_checkable
class MapStyleDataset(Protocol):
    """Anything a ``DataLoader`` can index: ``len(ds)`` and ``ds[i]``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class ImageDataset(Protocol):
    """What gamut reads from a data set (module docstring); :class:`BaseImageDataset` has the defaults."""

    @property
    def channels(self) -> int | None:
        """Channels of the items' images; None: not declared."""
        ...

    @property
    def resolution(self) -> tuple[int, int] | None:
        """``(height, width)`` of the items' images; None: not declared."""
        ...

    @property
    def num_classes(self) -> int:
        """Number of classes of the labels; 0: unconditional."""
        ...

    @property
    def label_counts(self) -> torch.Tensor | None:
        """Images per class, int64 ``[num_classes]``; None: unconditional or not known."""
        ...

    @property
    def root(self) -> Path | None:
        """The folder or file the images come from; None: generated."""
        ...

    @property
    def ignored(self) -> int:
        """Files under :attr:`root` that are not served (no image extension)."""
        ...

    @property
    def bad_files(self) -> Sequence[str]:
        """Files this process skipped because they could not be read or decoded."""
        ...

    def summary(self) -> str:
        """One line on bad and ignored files ('' when none)."""
        ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]: ...


class BaseImageDataset(Dataset, abc.ABC):
    """:class:`ImageDataset` with its defaults; gamut's data sets subclass it and set what they know.

    The defaults are class attributes (a subclass may set an instance attribute of the same name or
    override it with a property), so they never show among an instance's own attributes, which the
    metrics cache describes (:func:`src.metrics.cache.dataset_identity`).
    """

    channels: int | None = None
    resolution: tuple[int, int] | None = None
    num_classes: int = 0
    root: Path | None = None
    ignored: int = 0
    bad_files: Sequence[str] = ()

    @property
    def label_counts(self) -> torch.Tensor | None:
        return None

    def summary(self) -> str:
        return ""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]: ...


class ForeignDataset(BaseImageDataset):
    """A map-style object that does not implement :class:`ImageDataset`, with the protocol's defaults.

    Items are ``wrapped[i]`` unchanged. Nothing is declared: no channel or size check, unconditional,
    no root; the metrics cache describes :attr:`wrapped` (its class and settings).
    """

    def __init__(self, wrapped: MapStyleDataset) -> None:
        self.wrapped = wrapped

    def __len__(self) -> int:
        return len(self.wrapped)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.wrapped[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.wrapped!r})"


def as_image_dataset(dataset: MapStyleDataset) -> ImageDataset:
    """``dataset`` itself when it implements :class:`ImageDataset`, else a :class:`ForeignDataset` around it."""
    if isinstance(dataset, BaseImageDataset):  # gamut's own: no structural check needed
        return dataset
    if isinstance(dataset, ImageDataset):
        return dataset
    return ForeignDataset(dataset)


def torch_dataset(dataset: ImageDataset) -> Dataset:
    """``dataset`` as torch's ``DataLoader`` types its argument: itself when it is a torch ``Dataset``
    (every :class:`BaseImageDataset`), else a :class:`ForeignDataset` view of the same items."""
    return dataset if isinstance(dataset, Dataset) else ForeignDataset(dataset)
