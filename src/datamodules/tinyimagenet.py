"""TinyImageNet (``tiny-imagenet-200``) in its published layout, train or val split.

Layout (as downloaded from cs231n.stanford.edu/tiny-imagenet-200.zip)::

    tiny-imagenet-200/
      wnids.txt                     200 WordNet ids, one per line; class index = line order
      words.txt                     "<wnid>\\t<names>" for all of WordNet (optional: class names)
      train/<wnid>/images/*.JPEG    500 per class, labels from the folder
      val/images/*.JPEG             10 000 images
      val/val_annotations.txt       "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>" per val image

Images are 64x64 JPEGs, some grayscale (converted to RGB by the reader). ``resolution=224`` upsamples
them as ChromaGAN's TinyImageNet adaptation (jeniasivets/chromagan) does; decoding, the aspect crop and the
resize are :func:`src.datamodules.readers.decode_image`'s, and bad files follow the readers' policy:
skipped (the next good image is served), counted in ``bad_files`` and warned about once per
process, or raised with ``strict=True``.

:attr:`TinyImageNetDataset.imagenet_index` maps each of the 200 classes to its ImageNet-1k index
(the sorted-synset order of torchvision/Keras classifiers), the columns of a VGG-16
teacher's 1000 logits that ChromaGAN's class-distribution loss keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from src.datamodules.imagenet_classes import IMAGENET_WNIDS
from src.datamodules.readers import RESIZE_FILTERS, BadImageError, SkippingImageDataset, decode_image, is_image_name
from src.utils.resolution import parse_size

__all__ = ["TinyImageNetDataset", "SPLITS"]

SPLITS = ("train", "val")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"TinyImageNet: missing {what}: {path} (expected the tiny-imagenet-200 layout)")
    return path


def _is_image(path: Path) -> bool:
    return is_image_name(path.name) and path.is_file()


class TinyImageNetDataset(SkippingImageDataset):
    """One split of ``tiny-imagenet-200`` as ``{"image": uint8 [C, H, W], "label": int64 []}``.

    Args:
        root: the ``tiny-imagenet-200`` folder (or a folder holding it).
        split: ``"train"`` (labels from the class folders) or ``"val"`` (labels from
            ``val/val_annotations.txt``).
        resolution: output size, an int or ``[height, width]``; 64 is the files' own size.
        channels: 3 (RGB; grayscale files are expanded) or 4 (RGBA, opaque alpha).
        resize_filter: one of ``readers.RESIZE_FILTERS``.
        strict: raise :class:`~src.datamodules.readers.BadImageError` on an unreadable file instead of
            skipping it.
        allow_upscale: allow ``resolution`` above the files' size (default on: ChromaGAN's 224 px).

    The order is deterministic: train by class (``wnids.txt`` order) then file name; val in the
    order of ``val_annotations.txt``. A missing part of the layout raises ``FileNotFoundError`` naming
    the path when the dataset is built.
    """

    channels: int
    resolution: tuple[int, int]
    root: Path

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        resolution: int | Sequence[int] = 64,
        channels: int = 3,
        resize_filter: str = "box",
        strict: bool = False,
        allow_upscale: bool = True,
    ) -> None:
        super().__init__(strict)
        if split not in SPLITS:
            raise ValueError(f"data.dataset.split={split!r}: choose one of {', '.join(SPLITS)}")
        root = Path(root).expanduser()
        _require(root, "dataset root")
        if not (root / "wnids.txt").exists() and (root / "tiny-imagenet-200" / "wnids.txt").exists():
            root = root / "tiny-imagenet-200"
        self.root = root
        self.split = split
        if isinstance(resolution, Iterable) and not isinstance(resolution, str):
            resolution = list(resolution)  # OmegaConf ListConfig -> list
        self.resolution = parse_size(resolution, "data.resolution")  # any size (224 for ChromaGAN is fine)
        if channels not in (1, 3, 4):
            raise ValueError(f"data.dataset.channels={channels!r}: expected 1, 3 or 4")
        if resize_filter not in RESIZE_FILTERS:
            raise ValueError(f"data.resize_filter={resize_filter!r}: expected one of {', '.join(RESIZE_FILTERS)}")
        self.channels = int(channels)
        self.resize_filter = resize_filter
        self.allow_upscale = bool(allow_upscale)

        self.wnids = self._read_wnids(_require(root / "wnids.txt", "wnids.txt"))
        self.num_classes = len(self.wnids)  # 200 for the published dataset
        self.class_names = self._read_words(root / "words.txt", self.wnids)
        index = {w: i for i, w in enumerate(self.wnids)}
        if split == "train":
            self.files, self.labels = self._scan_train(_require(root / "train", "train split folder"), index)
        else:
            self.files, self.labels = self._scan_val(root / "val", index)
        if not self.files:
            raise FileNotFoundError(f"TinyImageNet: no images in {root / split}")
        self._imagenet_index: torch.Tensor | None = None

    # ----------------------------------------------------------------------------------------
    # layout
    # ----------------------------------------------------------------------------------------

    @staticmethod
    def _read_wnids(path: Path) -> list[str]:
        wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not wnids or len(set(wnids)) != len(wnids):
            dup = sorted({w for w in wnids if wnids.count(w) > 1})
            raise ValueError(
                f"{path}: expected distinct wnids, one per line; "
                + (f"repeated: {', '.join(dup)}" if dup else "the file is empty")
            )
        return wnids

    @staticmethod
    def _read_words(path: Path, wnids: list[str]) -> list[str]:
        """Names from ``words.txt`` (``wnid<TAB>names``); the wnid itself where there is none."""
        names: dict[str, str] = {}
        if path.is_file():
            wanted = set(wnids)
            with path.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    wnid, _, text = line.rstrip("\n").partition("\t")
                    if wnid in wanted:
                        names[wnid] = text.strip()
        return [names.get(w) or w for w in wnids]

    @staticmethod
    def _scan_train(train: Path, index: dict[str, int]) -> tuple[list[Path], list[int]]:
        files: list[Path] = []
        labels: list[int] = []
        for wnid, label in index.items():  # wnids.txt order
            folder = _require(train / wnid / "images", f"images of class {wnid}")
            found = sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: p.name)
            files.extend(found)
            labels.extend([label] * len(found))
        return files, labels

    @staticmethod
    def _scan_val(val: Path, index: dict[str, int]) -> tuple[list[Path], list[int]]:
        ann = _require(val / "val_annotations.txt", "val annotations")
        images = _require(val / "images", "val images folder")
        files: list[Path] = []
        labels: list[int] = []
        for n, line in enumerate(ann.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise ValueError(f"{ann}:{n}: expected '<file>\\t<wnid>\\t...', got {line!r}")
            name, wnid = parts[0].strip(), parts[1].strip()
            if wnid not in index:
                raise ValueError(f"{ann}:{n}: wnid {wnid!r} is not in wnids.txt")
            files.append(_require(images / name, f"val image listed in {ann.name}:{n}"))
            labels.append(index[wnid])
        return files, labels

    # ----------------------------------------------------------------------------------------
    # classes
    # ----------------------------------------------------------------------------------------

    @property
    def imagenet_index(self) -> torch.Tensor:
        """LongTensor ``[num_classes]`` (``[200]``): the ImageNet-1k class index of each class.

        Raises ``ValueError`` naming the wnid when one is not an ImageNet-1k synset.
        """
        if self._imagenet_index is None:
            position = {w: i for i, w in enumerate(IMAGENET_WNIDS)}
            missing = [w for w in self.wnids if w not in position]
            if missing:
                raise ValueError(
                    f"{self.root / 'wnids.txt'}: {len(missing)} wnid(s) are not ImageNet-1k synsets, "
                    f"e.g. {missing[0]!r}; no ImageNet class index for them"
                )
            self._imagenet_index = torch.tensor([position[w] for w in self.wnids], dtype=torch.long)
        return self._imagenet_index

    @property
    def label_counts(self) -> torch.Tensor:
        """Images per class, int64 ``[num_classes]``, over this split."""
        return torch.bincount(torch.tensor(self.labels, dtype=torch.int64), minlength=self.num_classes)

    # ----------------------------------------------------------------------------------------
    # items
    # ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.files)

    def name(self, i: int) -> str:
        """Path of item ``i`` relative to the root."""
        return self.files[i].relative_to(self.root).as_posix()

    def _load(self, i: int) -> torch.Tensor:
        path = self.files[i]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BadImageError(f"{self.name(i)}: cannot read ({e})") from e
        return decode_image(
            data,
            self.channels,
            self.resolution,
            resize_filter=self.resize_filter,
            name=self.name(i),
            allow_upscale=self.allow_upscale,
        )

    def _label(self, i: int) -> int:
        return self.labels[i]

    @property
    def where(self) -> str:
        return str(self.root)  # item names are relative to the root

    def extra_repr(self) -> str:
        return (
            f"root={str(self.root)!r}, split={self.split!r}, images={len(self)}, "
            f"resolution={list(self.resolution)}, channels={self.channels}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
