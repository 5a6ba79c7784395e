"""The DataModule every data config uses: a dataset of uint8 images, an endless resumable loader,
and the color conversion on the device.

Readers return ``{"image": uint8 [C, H, W], "label": int64 []}`` with ``C`` equal to the color
space's ``input_channels`` (4 for rgba, else 3). After the batch reaches the device,
:meth:`ImageDataModule.on_after_batch_transfer` scales it to ``[0, 1]`` and encodes it into the
model's color space in float32 with autocast disabled, batched (``kornia.color``; docs/architecture.md).

Exact resume: the train loader walks an :class:`~src.datamodules.sampler.InfiniteSampler` from the
number of samples this rank has consumed, which is counted on every training batch and saved in the
checkpoint through :meth:`state_dict` / :meth:`load_state_dict`. The loader's own generator is seeded
explicitly so its base seed never comes from the global torch RNG. Under DDP, set
``Trainer(use_distributed_sampler=False)``: the sampler shards by rank itself.

Horizontal flips (``xflip``, the StyleGAN2 FFHQ setting) are applied to training batches only, on
the device and batched, in :meth:`ImageDataModule.on_after_batch_transfer`. The flip mask of a batch
is drawn on the CPU from its own ``torch.Generator`` seeded with ``(seed, global stream position of
the batch's first sample)``, never from the global RNG, so a resumed run flips exactly the same
samples as a straight one, and ranks under DDP draw different masks.

An optional ``val_dataset`` gives a finite, ordered :meth:`~ImageDataModule.val_dataloader`
(no shuffling, last partial batch kept) for tools and models that want one; without it the
DataModule defines no val loader at all (and :attr:`~ImageDataModule.val_dataset` is None).

Data sets implement :class:`~src.datamodules.dataset.ImageDataset`: the DataModule reads their declared
``channels``, ``resolution``, ``num_classes``, ``label_counts``, ``ignored``, ``bad_files`` and
``summary()``; any other map-style object is wrapped in a
:class:`~src.datamodules.dataset.ForeignDataset` with the defaults. What callers read from the
DataModule is declared here: :attr:`~ImageDataModule.dataset`, :attr:`~ImageDataModule.val_dataset`,
:attr:`~ImageDataModule.colorspace`, :attr:`~ImageDataModule.resolution`,
:attr:`~ImageDataModule.num_classes`, :attr:`~ImageDataModule.label_distribution`,
:attr:`~ImageDataModule.xflip`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from src.colorspaces import ColorSpace, get_colorspace
from src.datamodules.dataset import ImageDataset, MapStyleDataset, as_image_dataset, torch_dataset
from src.datamodules.labels import class_frequencies
from src.datamodules.sampler import InfiniteSampler
from src.utils.resolution import parse_size

__all__ = ["ImageDataModule", "flip_mask"]

log = logging.getLogger(__name__)

_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def flip_mask(seed: int, position: int, n: int) -> torch.Tensor:
    """Bool ``[n]``: which of the ``n`` samples starting at global stream ``position`` are flipped.

    A pure function of its arguments (a fresh CPU ``torch.Generator``), each sample with probability 1/2.
    """
    mixed = (int(seed) * _MIX[0] + int(position) * _MIX[1] + _MIX[2]) % 2**64
    generator = torch.Generator().manual_seed(mixed)
    return torch.rand(n, generator=generator) < 0.5


def _plain(value: Any) -> Any:
    """Sequences (incl. OmegaConf ``ListConfig``) -> lists, so hparams load with ``weights_only=True``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


class ImageDataModule(pl.LightningDataModule):
    """Train loader over ``dataset`` plus on-device color conversion.

    Args:
        dataset: a map-style dataset (an :class:`~src.datamodules.dataset.ImageDataset`, or any object
            with ``__len__`` and ``__getitem__``, wrapped with the protocol's defaults), or a
            zero-argument callable building it (Hydra ``_partial_: true``), built lazily in :meth:`setup`.
        colorspace: color-space name (``colorspace.name``) or a :class:`ColorSpace`.
        resolution: optional expected ``(h, w)`` (int or ``[h, w]``, key ``data.resolution``); checked
            against the dataset's declared ``resolution``.
        batch_size: per-process batch size.
        batch_gpu: rows per forward/backward pass (gradient accumulation, NVIDIA's ``--batch-gpu``);
            must divide ``batch_size``. The loader still yields ``batch_size`` rows; the model splits
            them (``model.batch_gpu`` follows this key). None = the whole batch in one pass.
        num_workers: DataLoader workers.
        seed: sampler and DataLoader seed.
        pin_memory: pin host memory (only when CUDA is available).
        persistent_workers: keep workers alive (only when ``num_workers > 0``).
        shuffle: shuffle each pass of the infinite stream.
        xflip: flip training images horizontally with probability 1/2, on the device (module docstring).
        val_dataset: optional dataset (or callable building one) for a finite, ordered val loader.
        limit_images: train on the first this many images only (``debug=overfit``); None = all.
        **dataset_options: keys of the data node that its dataset node interpolates (``data.root``,
            ``data.resize_filter``, ``data.strict``, ...); kept in the hyperparameters, otherwise unused.
    """

    def __init__(
        self,
        dataset: MapStyleDataset | Callable[[], MapStyleDataset],
        colorspace: str | ColorSpace = "rgb",
        resolution: int | Sequence[int] | None = None,
        batch_size: int = 16,
        batch_gpu: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        shuffle: bool = True,
        xflip: bool = False,
        val_dataset: MapStyleDataset | Callable[[], MapStyleDataset] | None = None,
        limit_images: int | None = None,
        **dataset_options: Any,
    ) -> None:
        super().__init__()
        self._colorspace = get_colorspace(colorspace, "colorspace.name")
        self._resolution = None if resolution is None else parse_size(_plain(resolution), "data.resolution")
        # save_hyperparameters reads the arguments' current values: make them plain types first,
        # since checkpoints carry them and load with weights_only=True (torch >= 2.6 default).
        colorspace = self._colorspace.name
        resolution = _plain(resolution)
        dataset_options = {k: _plain(v) for k, v in dataset_options.items()}
        self.save_hyperparameters(ignore=["dataset", "val_dataset"], logger=False)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size!r}: expected a positive integer")
        # batch_gpu is the model's (it splits the batch): checked by config validation and the family
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"data.num_workers={num_workers!r}: expected a non-negative integer")
        if limit_images is not None and (
            isinstance(limit_images, bool) or not isinstance(limit_images, int) or limit_images < 1
        ):
            raise ValueError(f"data.limit_images={limit_images!r}: expected a positive integer or null")

        self._dataset, self._factory = self._dataset_or_factory(dataset, "data.dataset")
        self._consumed = 0
        self._reported = False

        self._val_dataset: ImageDataset | None = None
        self._val_factory: Callable[[], MapStyleDataset] | None = None
        if val_dataset is None:
            # No val loader: keep Lightning's own (undefined) hook so it sees none and never warns
            # about a val loader without a validation_step.
            self.val_dataloader = pl.LightningDataModule.val_dataloader.__get__(self)  # type: ignore[method-assign]
        else:
            self._val_dataset, self._val_factory = self._dataset_or_factory(val_dataset, "data.val_dataset")

    # ----------------------------------------------------------------------------------------
    # dataset and its properties
    # ----------------------------------------------------------------------------------------

    def _check_channels(self, channels: Any) -> None:
        cs = self._colorspace
        if channels is not None and channels != cs.input_channels:
            raise ValueError(
                f"data.dataset.channels={channels!r} does not match colorspace.name={cs.name!r}, "
                f"which reads {cs.input_channels}-channel images (set data.dataset.channels={cs.input_channels})"
            )

    def _check_resolution(self, resolution: Any) -> None:
        if self._resolution is None or resolution is None:
            return
        got = parse_size(_plain(resolution), "data.dataset.resolution")
        if got != self._resolution:
            raise ValueError(
                f"data.resolution={list(self._resolution)} does not match the dataset's resolution "
                f"data.dataset.resolution={list(got)}"
            )

    def _check_partial(self, factory: Callable[[], MapStyleDataset]) -> None:
        """Fail at instantiation, before any data is built, when a partial's arguments disagree."""
        if isinstance(factory, functools.partial):
            self._check_channels(factory.keywords.get("channels"))
            self._check_resolution(factory.keywords.get("resolution"))

    def _dataset_or_factory(
        self, given: Any, key: str
    ) -> tuple[ImageDataset | None, Callable[[], MapStyleDataset] | None]:
        """``(dataset, None)`` for a dataset, ``(None, factory)`` for a callable building one (built on
        first use), both checked against the color space and resolution; a ``ValueError`` naming ``key``
        for anything else."""
        if not isinstance(given, type) and isinstance(given, MapStyleDataset):
            dataset = as_image_dataset(given)
            self._check_dataset(dataset)
            return dataset, None
        if callable(given):
            self._check_partial(given)
            return None, given
        raise ValueError(
            f"{key}: expected a dataset or a callable building one (_partial_: true), got {type(given).__name__}"
        )

    def _check_dataset(self, dataset: ImageDataset) -> None:
        self._check_channels(dataset.channels)
        self._check_resolution(dataset.resolution)

    @property
    def dataset(self) -> ImageDataset:
        """The dataset, built on first use."""
        if self._dataset is None:
            assert self._factory is not None
            dataset = self._dataset = self._build(self._factory)
            if dataset.ignored:
                where = dataset.root if dataset.root is not None else dataset
                log.info("data: %d non-image file(s) ignored in %s", dataset.ignored, where)
        return self._dataset

    @property
    def val_dataset(self) -> ImageDataset | None:
        """The validation dataset, built on first use; ``None`` when none was given."""
        if self._val_dataset is None and self._val_factory is not None:
            self._val_dataset = self._build(self._val_factory)
        return self._val_dataset

    def _build(self, factory: Callable[[], MapStyleDataset]) -> ImageDataset:
        """``factory()`` as an :class:`ImageDataset`, checked against the color space and resolution."""
        dataset = as_image_dataset(factory())
        self._check_dataset(dataset)
        return dataset

    @property
    def colorspace(self) -> ColorSpace:
        return self._colorspace

    @property
    def img_channels(self) -> int:
        """Channels the model sees (``colorspace.channels``)."""
        return self._colorspace.channels

    @property
    def num_classes(self) -> int:
        """The dataset's number of classes (0: unconditional)."""
        return int(self.dataset.num_classes)

    @property
    def label_counts(self) -> torch.Tensor | None:
        """Training images per class, int64 ``[num_classes]``: the dataset's ``label_counts``; None when
        the data has no labels or does not count them."""
        if not self.num_classes:
            return None
        counts = self.dataset.label_counts
        return None if counts is None else torch.as_tensor(counts, dtype=torch.int64)

    @property
    def label_distribution(self) -> torch.Tensor | None:
        """The empirical class frequencies, float32 ``[num_classes]`` summing to 1, that a conditional
        model draws generated labels from; None when :attr:`label_counts` is None."""
        return class_frequencies(self.label_counts)

    @property
    def resolution(self) -> tuple[int, int]:
        """``(height, width)`` of the images: the dataset's, else ``data.resolution``, else the first image's."""
        res = self.dataset.resolution
        if res is not None:
            return parse_size(_plain(res), "data.dataset.resolution")
        if self._resolution is not None:
            return self._resolution
        h, w = self.dataset[0]["image"].shape[-2:]
        return int(h), int(w)

    @property
    def xflip(self) -> bool:
        """Whether training images are flipped horizontally (``data.xflip``); the metrics' reals then
        include the flips."""
        return bool(self.hparams["xflip"])

    def setup(self, stage: str | None = None) -> None:
        self.dataset  # noqa: B018 - build and validate now
        if stage in (None, "fit", "validate"):
            self.val_dataset  # noqa: B018

    def bad_files_report(self) -> str:
        """One line on the bad files this process's datasets skipped ('' when none).

        With ``num_workers > 0`` each worker holds its own copy of the dataset and warns itself;
        this line covers what the main process decoded.
        """
        lines = []
        for ds in (self._dataset, self._val_dataset):
            if ds is not None and ds.bad_files:
                lines.append(ds.summary() or f"{len(ds.bad_files)} bad image(s) skipped")
        return "; ".join(lines)

    def teardown(self, stage: str | None = None) -> None:
        report = self.bad_files_report()
        if report and not self._reported:
            self._reported = True
            log.warning("data: %s", report)

    # ----------------------------------------------------------------------------------------
    # loading
    # ----------------------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        size = len(self.dataset)
        limit = self.hparams["limit_images"]
        if limit is not None:  # debug=overfit: train on the first `limit` images only
            size = min(size, limit)
        sampler = InfiniteSampler(
            size,
            seed=self.hparams["seed"],
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            shuffle=self.hparams["shuffle"],
            start=self._consumed,
        )
        workers = self.hparams["num_workers"]
        return DataLoader(
            torch_dataset(self.dataset),
            batch_size=self.hparams["batch_size"],
            sampler=sampler,
            drop_last=True,
            num_workers=workers,
            pin_memory=bool(self.hparams["pin_memory"]) and torch.cuda.is_available(),
            persistent_workers=bool(self.hparams["persistent_workers"]) and workers > 0,
            # Without an explicit generator the loader draws its base seed from the global torch RNG.
            generator=torch.Generator().manual_seed(self.hparams["seed"]),
        )

    def val_dataloader(self) -> DataLoader:  # replaced per instance when there is no val_dataset
        """Finite and ordered: every item of ``val_dataset`` once, last partial batch kept."""
        dataset = self.val_dataset
        assert dataset is not None
        return DataLoader(
            torch_dataset(dataset),
            batch_size=self.hparams["batch_size"],
            shuffle=False,
            drop_last=False,
            num_workers=self.hparams["num_workers"],
            pin_memory=bool(self.hparams["pin_memory"]) and torch.cuda.is_available(),
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 ``[N, C, H, W]`` on the device -> float32 model space ``[N, channels, H, W]``.

        While the trainer is training: flips the batch horizontally per sample when ``xflip`` is on
        (mask from :func:`flip_mask` at this batch's stream position) and counts the samples
        consumed (for exact resume).
        """
        if not isinstance(batch, dict) or "image" not in batch:
            raise ValueError("ImageDataModule expects batches as dicts with an 'image' key")
        image = batch["image"]
        training = self.trainer is not None and self.trainer.training
        if training and self.hparams["xflip"]:
            image = self.flip(image, self._consumed)
        x = image.to(torch.float32)
        if image.dtype == torch.uint8:
            x = x / 255.0
        x = self._colorspace.encode(x)  # float32, autocast disabled inside
        if training:
            self._consumed += int(image.shape[0])
        return {**batch, "image": x}

    def flip(self, image: torch.Tensor, consumed: int) -> torch.Tensor:
        """Flip ``image [N, C, H, W]`` along W where :func:`flip_mask` says, ``consumed`` being this
        rank's samples before the batch (its global position is ``rank + consumed * world_size``)."""
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world_size = trainer.world_size if trainer is not None else 1
        mask = flip_mask(self.hparams["seed"], rank + consumed * world_size, image.shape[0])
        mask = mask.to(image.device, non_blocking=True).view(-1, *([1] * (image.ndim - 1)))
        return torch.where(mask, image.flip(-1), image)

    # ----------------------------------------------------------------------------------------
    # checkpoint state
    # ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"consumed": self._consumed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._consumed = int(state_dict["consumed"])
