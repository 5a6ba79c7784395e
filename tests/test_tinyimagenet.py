"""TinyImageNet in its real layout: labels, order, layout errors, ImageNet-1k index map, a short fit."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.datamodules.imagenet_classes import IMAGENET_WNIDS, imagenet_class_index
from src.datamodules.readers import BadImageError
from src.datamodules.tinyimagenet import TinyImageNetDataset

# Real TinyImageNet wnids, deliberately not in sorted order (class index = wnids.txt line order).
WNIDS = ["n01641577", "n01443537", "n01629819"]
COLORS = {"n01641577": (200, 40, 40), "n01443537": (40, 200, 40), "n01629819": (40, 40, 200)}
WORDS = {
    "n01443537": "goldfish, Carassius auratus",
    "n01629819": "European fire salamander, Salamandra salamandra",
    "n01641577": "bullfrog, Rana catesbeiana",
    "n00001740": "entity",
}
VAL = [
    ("val_0.JPEG", "n01629819"),
    ("val_1.JPEG", "n01641577"),
    ("val_2.JPEG", "n01443537"),
    ("val_3.JPEG", "n01641577"),
]


def _jpeg(path: Path, color, gray: bool = False, size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (size, size), color)
    (img.convert("L") if gray else img).save(path, format="JPEG", quality=95)


def make_tiny_imagenet(parent: Path, per_class: int = 3) -> Path:
    """A small ``tiny-imagenet-200`` in the published layout (JPEG files, real wnids)."""
    root = parent / "tiny-imagenet-200"
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in WORDS.items()))
    for wnid in WNIDS:
        folder = root / "train" / wnid
        for k in range(per_class):
            _jpeg(folder / "images" / f"{wnid}_{k}.JPEG", COLORS[wnid], gray=(k == 1 and wnid == WNIDS[0]))
        (folder / f"{wnid}_boxes.txt").write_text("".join(f"{wnid}_{k}.JPEG\t0\t0\t63\t63\n" for k in range(per_class)))
    for name, wnid in VAL:
        _jpeg(root / "val" / "images" / name, COLORS[wnid])
    (root / "val" / "val_annotations.txt").write_text("".join(f"{n}\t{w}\t0\t0\t63\t63\n" for n, w in VAL))
    (root / "test" / "images").mkdir(parents=True)
    return root


@pytest.fixture
def tin_root(tmp_path) -> Path:
    return make_tiny_imagenet(tmp_path)


def test_train_split_labels_order_and_images(tin_root):
    ds = TinyImageNetDataset(tin_root, split="train")
    assert len(ds) == 9 and ds.num_classes == 3
    assert ds.wnids == WNIDS
    assert ds.class_names == [WORDS[w] for w in WNIDS]
    assert [ds.name(i) for i in range(3)] == [f"train/{WNIDS[0]}/images/{WNIDS[0]}_{k}.JPEG" for k in range(3)]
    for i in range(len(ds)):
        item = ds[i]
        label = int(item["label"])
        assert item["label"].dtype == torch.int64 and label == i // 3
        img = item["image"]
        assert img.dtype == torch.uint8 and img.shape == (3, 64, 64)
        mean = img.float().mean(dim=(1, 2))
        if i == 1:  # the grayscale file is expanded to three equal channels
            assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
        else:
            assert torch.allclose(mean, torch.tensor(COLORS[WNIDS[label]], dtype=torch.float32), atol=6)


def test_val_split_labels_from_annotations(tin_root):
    ds = TinyImageNetDataset(tin_root.parent, split="val", resolution=32)  # the parent folder works too
    assert ds.root == tin_root
    assert len(ds) == len(VAL)
    assert [ds.name(i) for i in range(len(ds))] == [f"val/images/{n}" for n, _ in VAL]
    assert [int(ds[i]["label"]) for i in range(len(ds))] == [WNIDS.index(w) for _, w in VAL]
    assert ds[0]["image"].shape == (3, 32, 32)


def test_resolutions_and_upsampling(tin_root):
    assert TinyImageNetDataset(tin_root, resolution=224)[0]["image"].shape == (3, 224, 224)
    assert TinyImageNetDataset(tin_root, resolution=[16, 32], channels=4)[0]["image"].shape == (4, 16, 32)
    with pytest.raises(BadImageError, match="smaller than the target"):
        TinyImageNetDataset(tin_root, resolution=128, allow_upscale=False, strict=True)[0]


def test_imagenet_index_map(tin_root):
    assert len(IMAGENET_WNIDS) == 1000 and list(IMAGENET_WNIDS) == sorted(IMAGENET_WNIDS)
    assert IMAGENET_WNIDS[0] == "n01440764" and IMAGENET_WNIDS[-1] == "n15075141"
    # indices that jeniasivets/chromagan's class map gives
    for wnid, index in {"n01443537": 1, "n09428293": 978, "n02113799": 267, "n02099601": 207}.items():
        assert imagenet_class_index(wnid) == index
    ds = TinyImageNetDataset(tin_root)
    idx = ds.imagenet_index
    assert idx.dtype == torch.long and idx.shape == (3,)
    assert idx.tolist() == [IMAGENET_WNIDS.index(w) for w in WNIDS]
    assert idx[WNIDS.index("n01443537")] == 1


def test_imagenet_index_rejects_unknown_wnid(tin_root):
    (tin_root / "wnids.txt").write_text("n01443537\nn99999999\n")
    (tin_root / "train" / "n99999999" / "images").mkdir(parents=True)
    shutil.copy(
        tin_root / "train" / "n01443537" / "images" / "n01443537_0.JPEG",
        tin_root / "train" / "n99999999" / "images" / "x.JPEG",
    )
    ds = TinyImageNetDataset(tin_root)
    with pytest.raises(ValueError, match="n99999999"):
        _ = ds.imagenet_index


@pytest.mark.parametrize(
    "remove, split, missing",
    [
        ("wnids.txt", "train", "wnids.txt"),
        ("train", "train", "train"),
        ("val/val_annotations.txt", "val", "val/val_annotations.txt"),
        ("train/n01629819", "train", "train/n01629819/images"),
        ("val/images/val_2.JPEG", "val", "val/images/val_2.JPEG"),
    ],
)
def test_missing_layout_parts_name_the_path(tin_root, remove, split, missing):
    target = tin_root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(FileNotFoundError) as e:
        TinyImageNetDataset(tin_root, split=split)
    assert str(tin_root / missing) in str(e.value)


def test_missing_words_txt_falls_back_to_wnids(tin_root):
    (tin_root / "words.txt").unlink()
    assert TinyImageNetDataset(tin_root).class_names == WNIDS


def test_bad_file_skipped_counted_or_strict(tin_root):
    bad = tin_root / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_0.JPEG"
    bad.write_bytes(b"")
    ds = TinyImageNetDataset(tin_root)
    with pytest.warns(UserWarning, match=f"{WNIDS[1]}_0.JPEG"):
        item = ds[3]
    assert int(item["label"]) == 1  # the next good image of the same class
    assert ds.bad_files == [f"train/{WNIDS[1]}/images/{WNIDS[1]}_0.JPEG"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per dataset object
        ds[3]
    assert len(ds.bad_files) == 1 and "1 bad image" in ds.summary()
    with pytest.raises(BadImageError, match=f"{WNIDS[1]}_0.JPEG"):
        TinyImageNetDataset(tin_root, strict=True)[3]


def test_bad_arguments(tin_root):
    with pytest.raises(ValueError, match="split"):
        TinyImageNetDataset(tin_root, split="test")
    with pytest.raises(ValueError, match="resize_filter"):
        TinyImageNetDataset(tin_root, resize_filter="gauss")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        TinyImageNetDataset(tin_root / "nowhere")


def _tiny_cfg(*overrides: str):
    """conftest's ``tiny_cfg`` without its shapes-only key (``data.dataset.size``)."""
    from tests.conftest import TINY, compose_cfg

    tiny = [o for o in TINY if not o.startswith("data.dataset.size=")]
    return compose_cfg([*tiny, "logger=none", "run_name=test", *overrides])


def test_stylegan2_fits_two_steps_on_tinyimagenet(log_dir, tin_root):
    from hydra.utils import instantiate

    from src.train import train

    cfg = _tiny_cfg(
        "data=tinyimagenet", f"data.root={tin_root}", "data.resolution=16", "trainer.max_steps=2", "data.num_workers=0"
    )
    dm = instantiate(cfg.data)
    dm.setup("fit")
    assert isinstance(dm.dataset, TinyImageNetDataset) and dm.dataset.split == "train"
    assert dm.resolution == (16, 16) and dm.num_classes == 3
    metrics = train(cfg)
    assert np.isfinite(metrics["Loss/G"]) and np.isfinite(metrics["Loss/D"])
    ckpts = list(log_dir.rglob("last.ckpt"))
    assert len(ckpts) == 1
    state = torch.load(ckpts[0], weights_only=True)
    assert state["gamut"]["iteration"] == 2
