"""ImageFolderDataset (bad-file policy, labels, subsets), the folder/ffhq/danbooru configs, on-device
x-flips, and short StyleGAN2 runs on real-format folders and zips."""

from __future__ import annotations

import warnings
from pathlib import Path

import hydra.utils
import pytest
import torch
from torch.utils.data import DataLoader

from src.datamodules.image_datamodule import ImageDataModule, flip_mask
from src.datamodules.readers import BadImageError, ImageFolderDataset
from src.train import train
from src.utils.validation import ConfigError
from tests.conftest import TINY, compose_cfg
from tests.test_readers import gradient_rgb, mixed_files, write_dataset_zip, write_ffhq_tree, write_files

# TINY shrinks the shapes dataset (data.dataset.size), which folder datasets do not have.
TINY_FOLDER = [o for o in TINY if not o.startswith("data.dataset.size")]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write_files(tmp_path / "mixed", mixed_files(40))


@pytest.fixture
def ffhq(tmp_path: Path) -> Path:
    return write_ffhq_tree(tmp_path / "ffhq", n=6, size=40)


@pytest.fixture
def ffhq_zip(tmp_path: Path) -> Path:
    return write_dataset_zip(tmp_path / "ffhq-32.zip", n=8, size=32)


def cfg_for(*overrides: str):
    return compose_cfg([*TINY_FOLDER, "logger=none", "run_name=test", "data.num_workers=0", *overrides])


# ------------------------------------------------------------------------------------------------
# dataset
# ------------------------------------------------------------------------------------------------


def test_bad_files_are_skipped_counted_and_warned_once(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, resolution=16, channels=3)
    assert len(ds) == 11 and ds.ignored == 1 and ds.num_classes == 0
    with pytest.warns(UserWarning, match=r"bad/empty.png.*dataset.bad_files.*1 non-image.*data.strict=true") as rec:
        items = [ds[i] for i in range(len(ds))]
    assert len(rec) == 1
    assert sorted(ds.bad_files) == ["bad/empty.png", "bad/small.png", "bad/truncated.png"]
    for item in items:
        assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 16, 16)
        assert item["label"].dtype == torch.int64 and item["label"].shape == () and int(item["label"]) == 0
    names = [ds.name(i) for i in range(len(ds))]
    # a bad index returns the next good one (wrapping around)
    assert torch.equal(ds[names.index("bad/empty.png")]["image"], ds[names.index("modes/cmyk.jpg")]["image"])
    assert "3 bad image(s) skipped (bad/empty.png" in ds.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[names.index("bad/small.png")]  # already known: skipped without decoding or warning again


def test_strict_raises_with_the_path(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, resolution=16, strict=True)
    names = [ds.name(i) for i in range(len(ds))]
    with pytest.raises(BadImageError, match=f"{mixed}/bad/truncated.png.*data.strict"):
        ds[names.index("bad/truncated.png")]
    with pytest.raises(BadImageError, match="bad/small.png.*smaller"):
        ds[names.index("bad/small.png")]


def test_nothing_decodes(tmp_path: Path) -> None:
    write_files(tmp_path / "broken", {"a.png": b"", "b.jpg": b"junk"})
    ds = ImageFolderDataset(tmp_path / "broken", resolution=8)
    with pytest.warns(UserWarning), pytest.raises(BadImageError, match="none of the 2 images"):
        ds[0]


def test_images_all_smaller_than_the_resolution_say_so(tmp_path: Path) -> None:
    """Training at the default 64 px on 32 px images: the error gives the reason, not 'undecodable'."""
    from PIL import Image

    (tmp_path / "small").mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32)).save(tmp_path / "small" / f"{i}.png")
    ds = ImageFolderDataset(tmp_path / "small", resolution=64)
    with (
        pytest.warns(UserWarning),
        pytest.raises(
            BadImageError,
            match=r"none of the 3 images .* could be used; the first: .*32x32 \(WxH\) is smaller than the target 64x64",
        ),
    ):
        ds[0]


def test_bad_files_in_workers_do_not_end_the_epoch(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, resolution=16, channels=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert sum(b["image"].shape[0] for b in batches) == 11


def test_labels_subset_and_argument_errors(tmp_path: Path, mixed: Path, ffhq_zip: Path) -> None:
    ds = ImageFolderDataset(ffhq_zip, resolution=16, use_labels=True)
    assert ds.num_classes == 3 and [int(ds[i]["label"]) for i in range(8)] == [0, 1, 2, 0, 1, 2, 0, 1]
    sub = ImageFolderDataset(ffhq_zip, resolution=16, use_labels=True, max_images=3)
    assert len(sub) == 3 and sub.num_classes == 3
    names = [sub.name(i) for i in range(3)]
    assert names == sorted(names) and names == [ImageFolderDataset(ffhq_zip, max_images=3).name(i) for i in range(3)]
    assert len(ImageFolderDataset(ffhq_zip, max_images=100)) == 8
    with pytest.raises(ValueError, match="data.use_labels"):
        ImageFolderDataset(mixed, use_labels=True)
    with pytest.raises(ValueError, match="data.resolution"):
        ImageFolderDataset(mixed, resolution=0)
    assert ImageFolderDataset(mixed, resolution=[24, 40], allow_upscale=True).resolution == (24, 40)  # any size
    with pytest.raises(ValueError, match="data.resize_filter"):
        ImageFolderDataset(mixed, resize_filter="area")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
        ImageFolderDataset(tmp_path / "absent")


def test_zip_in_workers(ffhq_zip: Path) -> None:
    ds = ImageFolderDataset(ffhq_zip, resolution=[16, 32], use_labels=True)
    batches = list(DataLoader(ds, batch_size=3, num_workers=2))
    labels = torch.cat([b["label"] for b in batches])
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert batches[0]["image"].shape == (3, 3, 16, 32)


# ------------------------------------------------------------------------------------------------
# x-flips
# ------------------------------------------------------------------------------------------------


class FakeTrainer:
    def __init__(self, training: bool = True, global_rank: int = 0, world_size: int = 1) -> None:
        self.training, self.global_rank, self.world_size = training, global_rank, world_size


def test_flip_mask_is_a_pure_function() -> None:
    state = torch.get_rng_state()
    a = flip_mask(3, 100, 4000)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(a, flip_mask(3, 100, 4000))
    assert not torch.equal(a, flip_mask(4, 100, 4000)) and not torch.equal(a, flip_mask(3, 101, 4000))
    assert 0.45 < a.float().mean() < 0.55


def test_xflip_on_device_deterministic_across_resume(ffhq: Path) -> None:
    def make(consumed: int = 0, xflip: bool = True) -> ImageDataModule:
        ds = ImageFolderDataset(ffhq, resolution=16, layout="ffhq")
        dm = ImageDataModule(ds, batch_size=4, xflip=xflip, seed=7)
        dm.load_state_dict({"consumed": consumed})
        dm.trainer = FakeTrainer()
        return dm

    plain, flipped = make(xflip=False), make()
    raw = [next(iter(plain.train_dataloader())) for _ in range(1)]
    loader_p, loader_f = iter(plain.train_dataloader()), iter(flipped.train_dataloader())
    outs_p = [plain.on_after_batch_transfer(next(loader_p), 0)["image"] for _ in range(6)]
    outs_f = [flipped.on_after_batch_transfer(next(loader_f), 0)["image"] for _ in range(6)]
    mask = torch.cat([flip_mask(7, 4 * k, 4) for k in range(6)])
    p, f = torch.cat(outs_p), torch.cat(outs_f)
    assert torch.equal(f[mask], p[mask].flip(-1)) and torch.equal(f[~mask], p[~mask])
    assert 0 < int(mask.sum()) < 24
    assert raw[0]["image"].dtype == torch.uint8

    resumed = make(consumed=12)  # resume after 3 batches: the same flips for batches 4..6
    loader_r = iter(resumed.train_dataloader())
    outs_r = [resumed.on_after_batch_transfer(next(loader_r), 0)["image"] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(outs_r, outs_f[3:]))

    evaluating = make()
    evaluating.trainer = FakeTrainer(training=False)  # never flipped outside training
    out = evaluating.on_after_batch_transfer(next(iter(evaluating.train_dataloader())), 0)["image"]
    assert torch.equal(out, outs_p[0])


# ------------------------------------------------------------------------------------------------
# configs and training
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,resolution,xflip", [("folder", 64, False), ("ffhq", 256, True), ("danbooru", 64, False)])
def test_configs_compose(name: str, resolution: int, xflip: bool, mixed: Path) -> None:
    # under the default experiment (quickstart) the data config's own resolution applies
    cfg = compose_cfg([f"data={name}", f"data.root={mixed}", "data.strict=true", "colorspace=gray"])
    assert cfg.data.resolution == resolution and cfg.data.xflip is xflip and cfg.data.resize_filter == "box"
    dm = hydra.utils.instantiate(cfg.data)
    ds = dm.dataset
    assert isinstance(ds, ImageFolderDataset) and ds.strict and ds.channels == 3 and ds.resolution == (resolution,) * 2
    assert dm.hparams.xflip is xflip and dm.hparams.root == str(mixed)


def test_missing_root_names_the_key(mixed: Path) -> None:
    cfg = compose_cfg(["data=folder"])
    with pytest.raises(Exception, match=r"data\.root"):
        hydra.utils.instantiate(cfg.data)


def test_train_on_mixed_folder(log_dir: Path, mixed: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train(cfg_for("data=folder", f"data.root={mixed}", "trainer.max_steps=2", "data.xflip=true"))
    assert (log_dir / "quickstart" / "test" / "checkpoints" / "last.ckpt").is_file()


def test_train_rgba_non_square_with_workers(log_dir: Path, mixed: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train(
            cfg_for(
                "data=folder",
                f"data.root={mixed}",
                "data.resolution=[16,32]",
                "colorspace=rgba",
                "data.num_workers=2",
                "trainer.max_steps=2",
            )
        )


@pytest.mark.parametrize("source", ["tree", "zip"])
def test_train_ffhq(log_dir: Path, ffhq: Path, ffhq_zip: Path, source: str) -> None:
    root = ffhq if source == "tree" else ffhq_zip
    train(cfg_for("data=ffhq", f"data.root={root}", "trainer.max_steps=2"))


def test_train_conditional_on_zip_labels(log_dir: Path, ffhq_zip: Path) -> None:
    train(
        cfg_for(
            "data=folder", f"data.root={ffhq_zip}", "data.use_labels=true", "model.num_classes=3", "trainer.max_steps=1"
        )
    )


def test_bad_data_stops_before_writing(log_dir: Path, tmp_path: Path, mixed: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path / "nowhere")):
        train(cfg_for("data=ffhq", f"data.root={tmp_path / 'nowhere'}", "trainer.max_steps=1"))
    with pytest.raises(ConfigError, match="data.use_labels"):
        train(cfg_for("data=folder", f"data.root={mixed}", "data.use_labels=true", "trainer.max_steps=1"))
    assert not (log_dir / "quickstart" / "test").exists()
    gradient_rgb(4, 4)  # builders stay importable
