"""Fashion-MNIST's IDX files: the format read against hand-written bytes, the data set at the
Nutshell's 24x24 and as published, bad files named, and a training step on it."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from src.datamodules.fashion_mnist import FashionMNISTDataset, read_idx


def _idx(values: np.ndarray) -> bytes:
    """IDX bytes written out by hand: 0, 0, type 0x08, ndim, big-endian uint32 sizes, the bytes."""
    return bytes([0, 0, 0x08, values.ndim]) + b"".join(struct.pack(">I", s) for s in values.shape) + values.tobytes()


def _write(root: Path, n: int = 6, split: str = "train", compress: bool = True) -> np.ndarray:
    root.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    stem = "train" if split == "train" else "t10k"
    for name, values in ((f"{stem}-images-idx3-ubyte", images), (f"{stem}-labels-idx1-ubyte", labels)):
        data = _idx(values)
        (root / (name + ".gz" if compress else name)).write_bytes(gzip.compress(data) if compress else data)
    return images


@pytest.fixture
def fmnist(tmp_path) -> tuple[Path, np.ndarray]:
    return tmp_path / "fmnist", _write(tmp_path / "fmnist")


def test_idx_reads_hand_written_bytes(tmp_path):
    raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])  # a 2x3 matrix of bytes
    (tmp_path / "m").write_bytes(raw)
    assert read_idx(tmp_path / "m").tolist() == [[1, 2, 3], [4, 5, 6]]
    (tmp_path / "m.gz").write_bytes(gzip.compress(raw))
    assert read_idx(tmp_path / "m.gz").tolist() == [[1, 2, 3], [4, 5, 6]]
    (tmp_path / "v").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 9, 8, 7, 6]))
    assert read_idx(tmp_path / "v").tolist() == [9, 8, 7, 6]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "not an IDX file"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 5, 5, 5, 5]), "value type 0x0d"),
        (bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3]), r"says \[2, 2\] \(4 bytes\), the file holds 3"),
        (b"\x1f\x8b not gzip", "not a readable gzip file"),
    ],
)
def test_bad_idx_files_name_themselves(tmp_path, raw, message):
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(ValueError, match=message) as e:
        read_idx(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(e.value)


def test_dataset_as_published_and_at_24px(fmnist):
    root, images = fmnist
    ds = FashionMNISTDataset(root, resolution=28, channels=1)
    assert len(ds) == 6 and ds.num_classes == 10 and ds.label_counts.tolist()[:6] == [1] * 6
    item = ds[4]
    assert torch.equal(item["image"][0], torch.from_numpy(images[4])) and int(item["label"]) == 4
    small = FashionMNISTDataset(root, resolution=24, channels=3)[1]["image"]
    assert small.shape == (3, 24, 24) and torch.equal(small[0], small[2])
    rgba = FashionMNISTDataset(root, resolution=[24, 24], channels=4, max_images=2)
    assert len(rgba) == 2 and bool((rgba[0]["image"][3] == 255).all())


def test_missing_files_are_named_with_where_to_get_them(tmp_path):
    _write(tmp_path / "only_train")
    with pytest.raises(FileNotFoundError, match=r"missing t10k-images-idx3-ubyte.gz .*zalandoresearch"):
        FashionMNISTDataset(tmp_path / "only_train", split="test")
    _write(tmp_path / "plain", split="test", compress=False)  # unpacked files work too
    assert len(FashionMNISTDataset(tmp_path / "plain", split="test")) == 6


def test_trains_at_24px_gray(tiny_cfg, log_dir, fmnist):
    from src.train import train

    root, _ = fmnist
    metrics = train(
        tiny_cfg(
            "data=fashion_mnist",
            f"data.root={root}",
            "colorspace=gray",
            "data.resolution=24",
            "data.batch_size=4",
            "trainer.max_steps=2",
            run_name="fm",
        )
    )
    assert all(v == v for v in metrics.values())


def test_classes_keep_one_class_with_published_labels(tmp_path):
    root = tmp_path / "f"
    images = _write(root, n=25)  # labels 0..9, 0..9, 0..4
    ds = FashionMNISTDataset(root, resolution=28, classes=[7])
    assert len(ds) == 2 and [int(ds[i]["label"]) for i in range(2)] == [7, 7]
    assert torch.equal(ds[1]["image"][0], torch.from_numpy(images[17]))
    assert ds.label_counts.tolist() == [0] * 7 + [2, 0, 0]
    by_name = FashionMNISTDataset(root, resolution=28, classes=["sneaker", "T-shirt/top"], max_images=2)
    assert [int(by_name[i]["label"]) for i in range(len(by_name))] == [0, 7]
    with pytest.raises(ValueError, match=r"data.classes: 'Boots' is not a class; the classes are 0 T-shirt"):
        FashionMNISTDataset(root, classes=["Boots"])
    with pytest.raises(ValueError, match="data.classes: 10 is not a class"):
        FashionMNISTDataset(root, classes=[10])
