"""``benchmark.py loader``: images/s through the real train loader of :class:`ImageDataModule`.

Over an :class:`ImageFolderDataset`: PNG decoding, crop/resize, collation, the transfer to ``device`` and
``on_after_batch_transfer``'s color encoding into ``space``. Without ``root`` it first writes ``images``
random PNGs at the target resolution into a temporary folder, or a dataset_tool zip of them
(``source=zip``); ``workers`` DataLoader workers. The first ``warmup`` batches (worker start-up) are
not timed.
"""

from __future__ import annotations

import io
import json
import platform
import tempfile
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import torch

from src.benchmark.harness import device_of, resolution_of
from src.benchmark.options import BASE, Sizes, Subject
from src.colorspaces import get_colorspace
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.readers import ImageFolderDataset, archive_name
from src.profiling.measure import synchronize

__all__ = ["SUBJECT", "write_random_images"]


def write_random_images(root: Path, source: str, n: int, resolution: tuple[int, int], seed: int = 0) -> Path:
    """``n`` random RGB PNGs of ``resolution`` as a folder, or as a dataset_tool zip; returns the path."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = resolution
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    zf = zipfile.ZipFile(root / "images.zip", "w", compression=zipfile.ZIP_STORED) if source == "zip" else None
    for i in range(n):
        # smooth random images (a noise tile upsampled): PNG sizes closer to photos than white noise
        tile = rng.integers(0, 256, (max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
        img = Image.fromarray(tile).resize((w, h), Image.Resampling.BILINEAR)
        if zf is None:
            img.save(folder / f"{i:06d}.png", compress_level=0)
        else:
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=0)
            zf.writestr(archive_name(i), buf.getvalue())
    if zf is not None:
        zf.writestr("dataset.json", json.dumps({"labels": None}))
        zf.close()
        return root / "images.zip"
    return folder


def _time_batches(dm: ImageDataModule, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` batches of the train loader, each moved to ``device`` and color-encoded,
    after ``warmup`` untimed ones; the loader (and its workers) ends when this returns."""
    it = iter(dm.train_dataloader())
    pin = device.type == "cuda"

    def step() -> None:
        batch = next(it)
        batch = {k: v.to(device, non_blocking=pin) for k, v in batch.items()}
        dm.on_after_batch_transfer(batch, 0)

    for _ in range(warmup):
        step()
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - t0


def run(args: types.SimpleNamespace) -> dict:
    res = resolution_of(args)
    device = device_of(args)
    with tempfile.TemporaryDirectory(prefix="gamut-bench-") as tmp:
        root = Path(args.root) if args.root else write_random_images(Path(tmp), args.source, args.images, res)
        dataset = ImageFolderDataset(root, resolution=list(res), channels=get_colorspace(args.space).input_channels)
        dm = ImageDataModule(
            dataset,
            colorspace=args.space,
            resolution=list(res),
            batch_size=args.batch,
            num_workers=args.workers,
            seed=0,
        )
        dm.setup("fit")
        secs = _time_batches(dm, device, args.warmup, args.steps)  # its workers stop before the folder goes
        out = {
            "what": "loader",
            "source": "zip" if str(root).endswith(".zip") else "folder",
            "root": str(args.root) if args.root else f"{len(dataset)} random PNGs (temporary)",
            "resolution": list(res),
            "batch": args.batch,
            "workers": args.workers,
            "colorspace": args.space,
            "device": str(device),
            "timed_batches": args.steps,
            "sec_per_batch": round(secs / args.steps, 5),
            "images_per_sec": round(args.steps * args.batch / secs, 1),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
        }
    return out


def check(args: types.SimpleNamespace) -> None:
    get_colorspace(args.space, "space")  # a bad space= fails before any image is written


SUBJECT = Subject(
    "loader",
    run,
    BASE | dict(steps=None, source="folder", root=None, images=512, workers=0, space="rgb", threads=None),
    Sizes([64], 32, 50, 4),
    check,
)
