"""The DataModule every data config uses: a dataset of uint8 images, an endless resumable loader,
and the color conversion on the device.

Readers return ``{"image": uint8 [C, H, W], "label": int64 []}`` with ``C`` equal to the color
space's ``input_channels`` (4 for rgba, else 3). After the batch reaches the device,
:meth:`ImageDataModule.on_after_batch_transfer` scales it to ``[0, 1]`` and encodes it into the
model's color space in float32 with autocast disabled, batched (DESIGN.md, "Data"; spec platforms §6).

Exact resume: the train loader walks an :class:`~src.datamodules.sampler.InfiniteSampler` from the
number of samples this rank has consumed, which is counted on every training batch and saved in the
checkpoint through :meth:`state_dict` / :meth:`load_state_dict`. The loader's own generator is seeded
explicitly so its base seed never comes from the global torch RNG. Under DDP, set
``Trainer(use_distributed_sampler=False)``: the sampler shards by rank itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from src.datamodules.colorspaces import ColorSpace, get_colorspace
from src.datamodules.sampler import InfiniteSampler
from src.utils.resolution import parse_resolution

__all__ = ["ImageDataModule"]


def _plain(value: Any) -> Any:
    """Sequences (incl. OmegaConf ``ListConfig``) -> lists, so hparams load with ``weights_only=True``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


class ImageDataModule(pl.LightningDataModule):
    """Train loader over ``dataset`` plus on-device color conversion.

    Args:
        dataset: a map-style dataset, or a zero-argument callable building it (Hydra ``_partial_: true``),
            built lazily in :meth:`setup`.
        colorspace: color-space name (``colorspace.name``) or a :class:`ColorSpace`.
        resolution: optional expected ``(h, w)`` (int or ``[h, w]``, key ``data.resolution``); checked
            against the dataset's ``resolution`` attribute.
        batch_size: per-process batch size.
        num_workers: DataLoader workers.
        seed: sampler and DataLoader seed.
        pin_memory: pin host memory (only when CUDA is available).
        persistent_workers: keep workers alive (only when ``num_workers > 0``).
        shuffle: shuffle each pass of the infinite stream.
    """

    def __init__(
        self,
        dataset: Dataset | Callable[[], Dataset],
        colorspace: str | ColorSpace = "rgb",
        resolution: int | Sequence[int] | None = None,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self._colorspace = get_colorspace(colorspace, "colorspace.name")
        self._resolution = None if resolution is None else parse_resolution(_plain(resolution), "data.resolution")
        # save_hyperparameters reads the arguments' current values: make them plain types first,
        # since checkpoints carry them and load with weights_only=True (spec platforms §3).
        colorspace = self._colorspace.name
        resolution = _plain(resolution)
        self.save_hyperparameters(ignore=["dataset"], logger=False)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size!r}: expected a positive integer")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"data.num_workers={num_workers!r}: expected a non-negative integer")

        if isinstance(dataset, Dataset) or (
            not isinstance(dataset, type) and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
        ):
            self._dataset: Dataset | None = dataset
            self._factory: Callable[[], Dataset] | None = None
            self._check_dataset(dataset)
        elif callable(dataset):
            self._dataset = None
            self._factory = dataset
            self._check_partial(dataset)
        else:
            raise ValueError(
                f"data.dataset: expected a dataset or a callable building one (_partial_: true), "
                f"got {type(dataset).__name__}"
            )
        self._consumed = 0

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
        got = parse_resolution(_plain(resolution), "data.dataset.resolution")
        if got != self._resolution:
            raise ValueError(
                f"data.resolution={list(self._resolution)} does not match the dataset's resolution "
                f"data.dataset.resolution={list(got)}"
            )

    def _check_partial(self, factory: Callable[[], Dataset]) -> None:
        """Fail at instantiation, before any data is built, when a partial's arguments disagree."""
        if isinstance(factory, functools.partial):
            self._check_channels(factory.keywords.get("channels"))
            self._check_resolution(factory.keywords.get("resolution"))

    def _check_dataset(self, dataset: Dataset) -> None:
        self._check_channels(getattr(dataset, "channels", None))
        self._check_resolution(getattr(dataset, "resolution", None))

    @property
    def dataset(self) -> Dataset:
        """The dataset, built on first use."""
        if self._dataset is None:
            assert self._factory is not None
            dataset = self._factory()
            self._check_dataset(dataset)
            self._dataset = dataset
        return self._dataset

    @property
    def colorspace(self) -> ColorSpace:
        return self._colorspace

    @property
    def img_channels(self) -> int:
        """Channels the model sees (``colorspace.channels``)."""
        return self._colorspace.channels

    @property
    def num_classes(self) -> int:
        """The dataset's number of classes if it tells, else 0 (unconditional)."""
        return int(getattr(self.dataset, "num_classes", 0) or 0)

    @property
    def resolution(self) -> tuple[int, int]:
        """``(height, width)`` of the images: the dataset's, else ``data.resolution``, else the first image's."""
        res = getattr(self.dataset, "resolution", None)
        if res is not None:
            return parse_resolution(_plain(res), "data.dataset.resolution")
        if self._resolution is not None:
            return self._resolution
        h, w = self.dataset[0]["image"].shape[-2:]
        return int(h), int(w)

    def setup(self, stage: str | None = None) -> None:
        self.dataset  # noqa: B018 - build and validate now

    # ----------------------------------------------------------------------------------------
    # loading
    # ----------------------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        sampler = InfiniteSampler(
            len(self.dataset),
            seed=self.hparams.seed,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            shuffle=self.hparams.shuffle,
            start=self._consumed,
        )
        workers = self.hparams.num_workers
        return DataLoader(
            self.dataset,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=workers,
            pin_memory=bool(self.hparams.pin_memory) and torch.cuda.is_available(),
            persistent_workers=bool(self.hparams.persistent_workers) and workers > 0,
            # Without an explicit generator the loader draws its base seed from the global torch RNG.
            generator=torch.Generator().manual_seed(self.hparams.seed),
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 ``[N, C, H, W]`` on the device -> float32 model space ``[N, channels, H, W]``.

        Counts the samples consumed while the trainer is training (for exact resume).
        """
        if not isinstance(batch, dict) or "image" not in batch:
            raise ValueError("ImageDataModule expects batches as dicts with an 'image' key")
        image = batch["image"]
        x = image.to(torch.float32)
        if image.dtype == torch.uint8:
            x = x / 255.0
        x = self._colorspace.encode(x)  # float32, autocast disabled inside
        if self.trainer is not None and self.trainer.training:
            self._consumed += int(image.shape[0])
        return {**batch, "image": x}

    # ----------------------------------------------------------------------------------------
    # checkpoint state
    # ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"consumed": self._consumed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._consumed = int(state_dict["consumed"])
