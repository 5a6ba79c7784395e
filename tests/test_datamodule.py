"""InfiniteSampler and ImageDataModule: endless, exactly resumable, sharded loading with on-device
color conversion (src/datamodules/sampler.py, src/datamodules/image_datamodule.py)."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import hydra.utils
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from src.colorspaces import COLORSPACE_NAMES, get_colorspace
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.sampler import InfiniteSampler
from src.datamodules.shapes import ShapesDataset

CONF = Path(__file__).resolve().parents[1] / "src" / "conf"


def take(iterable, n: int) -> list:
    return list(itertools.islice(iterable, n))


# ------------------------------------------------------------------------------------------------
# InfiniteSampler
# ------------------------------------------------------------------------------------------------


def test_sampler_is_endless_and_deterministic() -> None:
    a = take(InfiniteSampler(10, seed=1), 95)
    assert a == take(InfiniteSampler(10, seed=1), 95)
    assert a != take(InfiniteSampler(10, seed=2), 95)
    # each pass is a permutation, and passes differ
    passes = [a[i : i + 10] for i in range(0, 90, 10)]
    assert all(sorted(p) == list(range(10)) for p in passes)
    assert len({tuple(p) for p in passes}) > 1
    with pytest.raises(TypeError):
        len(InfiniteSampler(10))  # no __len__: Lightning treats the epoch as infinite


def test_sampler_no_shuffle() -> None:
    assert take(InfiniteSampler(4, shuffle=False), 10) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("start", [0, 1, 9, 10, 11, 37])
def test_sampler_resume_equals_tail(start: int) -> None:
    full = take(InfiniteSampler(10, seed=5), 80)
    assert take(InfiniteSampler(10, seed=5, start=start), 80 - start) == full[start:]


@pytest.mark.parametrize("world_size,n", [(2, 10), (3, 10), (4, 3)])
def test_sampler_rank_sharding(world_size: int, n: int) -> None:
    steps = 4 * n
    full = take(InfiniteSampler(n, seed=3), steps * world_size)
    ranks = [take(InfiniteSampler(n, seed=3, rank=r, world_size=world_size), steps) for r in range(world_size)]
    for r, stream in enumerate(ranks):
        assert stream == full[r::world_size]
    # within one permutation the ranks are disjoint and together cover it
    positions = {}
    for r in range(world_size):
        for i in range(steps):
            positions[r + i * world_size] = ranks[r][i]
    for k in range(steps * world_size // n):
        perm = [positions[p] for p in range(k * n, (k + 1) * n)]
        assert sorted(perm) == list(range(n))
    # a rank resumes inside its own shard
    start = 7
    resumed = take(InfiniteSampler(n, seed=3, rank=1, world_size=world_size, start=start), steps - start)
    assert resumed == ranks[1][start:]


def test_sampler_bad_arguments() -> None:
    with pytest.raises(ValueError):
        InfiniteSampler(0)
    with pytest.raises(ValueError):
        InfiniteSampler(10, rank=2, world_size=2)
    with pytest.raises(ValueError):
        InfiniteSampler(10, start=-1)


# ------------------------------------------------------------------------------------------------
# ImageDataModule
# ------------------------------------------------------------------------------------------------


@dataclass
class FakeTrainer:
    """The three attributes the DataModule reads from a Trainer."""

    training: bool = True
    global_rank: int = 0
    world_size: int = 1


def make_dm(colorspace: str = "rgb", resolution=32, batch_size: int = 4, **kwargs) -> ImageDataModule:
    channels = get_colorspace(colorspace).input_channels
    dataset = functools.partial(ShapesDataset, size=40, resolution=resolution, seed=0, channels=channels)
    return ImageDataModule(dataset, colorspace=colorspace, resolution=resolution, batch_size=batch_size, **kwargs)


def batches(dm: ImageDataModule, n: int) -> list[dict]:
    loader = dm.train_dataloader()
    return [dm.on_after_batch_transfer(b, 0) for b in take(iter(loader), n)]


@pytest.mark.parametrize("colorspace", COLORSPACE_NAMES)
def test_batches_are_encoded(colorspace: str) -> None:
    dm = make_dm(colorspace, resolution=[16, 32])
    dm.setup("fit")
    cs = get_colorspace(colorspace)
    assert dm.colorspace is cs and dm.img_channels == cs.channels
    assert dm.resolution == (16, 32) and dm.num_classes == 6
    raw = next(iter(dm.train_dataloader()))
    assert raw["image"].dtype == torch.uint8 and raw["image"].shape == (4, cs.input_channels, 16, 32)
    out = dm.on_after_batch_transfer(raw, 0)
    x = out["image"]
    assert x.dtype == torch.float32 and x.shape == (4, cs.channels, 16, 32)
    assert x.min() >= -1 - 1e-4 and x.max() <= 1 + 1e-4
    torch.testing.assert_close(x, cs.encode(raw["image"].float() / 255))
    assert torch.equal(out["label"], raw["label"])
    assert raw["image"].dtype == torch.uint8  # the input batch is not modified in place


def test_dataloader_settings() -> None:
    dm = make_dm(num_workers=0, seed=11)
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, InfiniteSampler)
    assert loader.drop_last and loader.batch_size == 4
    assert not loader.persistent_workers
    assert loader.pin_memory == torch.cuda.is_available()
    assert loader.generator is not None and loader.generator.initial_seed() == 11


def test_global_rng_does_not_change_batches() -> None:
    torch.manual_seed(0)
    a = batches(make_dm(), 3)
    torch.manual_seed(1)
    b = batches(make_dm(), 3)
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(a, b))


def test_consumed_counts_only_training_batches() -> None:
    dm = make_dm()
    batches(dm, 2)  # no trainer
    assert dm.state_dict() == {"consumed": 0}
    dm.trainer = FakeTrainer(training=False)
    batches(dm, 2)
    assert dm.state_dict() == {"consumed": 0}
    dm.trainer = FakeTrainer(training=True)
    batches(dm, 3)
    assert dm.state_dict() == {"consumed": 12}


def test_state_dict_resume_with_hooks() -> None:
    # uninterrupted: 20 batches of 4 over a 40-image dataset crosses two permutations
    full_dm = make_dm()
    full_dm.trainer = FakeTrainer()
    full = batches(full_dm, 20)

    first = make_dm()
    first.trainer = FakeTrainer()
    batches(first, 7)
    state = first.state_dict()
    assert state == {"consumed": 28}

    resumed = make_dm()
    resumed.trainer = FakeTrainer()
    resumed.load_state_dict(state)
    rest = batches(resumed, 13)
    for a, b in zip(full[7:], rest):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert resumed.state_dict() == {"consumed": 80}


def test_ranks_read_disjoint_samples() -> None:
    seen = []
    for rank in range(2):
        dm = make_dm(colorspace="rgb", batch_size=5)
        dm.trainer = FakeTrainer(global_rank=rank, world_size=2)
        sampler = dm.train_dataloader().sampler
        seen.append(take(iter(sampler), 20))
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(40))


def test_dataset_object_and_factory() -> None:
    ds = ShapesDataset(size=8, resolution=16)
    dm = ImageDataModule(ds, batch_size=2)
    assert dm.dataset is ds and dm.resolution == (16, 16)
    calls = []

    def factory() -> ShapesDataset:
        calls.append(1)
        return ShapesDataset(size=8, resolution=16)

    dm = ImageDataModule(factory, batch_size=2)
    assert not calls  # built lazily
    dm.setup("fit")
    dm.setup("fit")
    assert len(calls) == 1 and len(dm.dataset) == 8


def test_hparams_are_plain() -> None:
    dm = ImageDataModule(
        functools.partial(ShapesDataset, size=8, resolution=OmegaConf.create([16, 32])),
        colorspace=get_colorspace("lab"),
        resolution=OmegaConf.create([16, 32]),
    )
    assert dm.hparams["colorspace"] == "lab"
    assert dm.hparams["resolution"] == [16, 32] and type(dm.hparams["resolution"]) is list
    assert "dataset" not in dm.hparams


def test_bad_colorspace_name() -> None:
    with pytest.raises(ValueError, match="colorspace.name") as err:
        make_dm(colorspace="rgb").__class__(ShapesDataset(size=4), colorspace="hsl")
    assert "'hsl'" in str(err.value) and "hsv_polar" in str(err.value)


def test_channel_mismatch() -> None:
    # caught at construction when the partial says so ...
    with pytest.raises(ValueError, match=r"data\.dataset\.channels.*colorspace\.name"):
        ImageDataModule(functools.partial(ShapesDataset, size=4, channels=3), colorspace="rgba")
    # ... and when the dataset is built
    dm = ImageDataModule(lambda: ShapesDataset(size=4, channels=4), colorspace="rgb")
    with pytest.raises(ValueError, match=r"data\.dataset\.channels=4.*colorspace\.name='rgb'"):
        dm.setup("fit")
    with pytest.raises(ValueError, match=r"data\.dataset\.channels"):
        ImageDataModule(ShapesDataset(size=4, channels=3), colorspace="rgba")
    # gray reads RGB and converts on the device
    ImageDataModule(ShapesDataset(size=4, channels=3), colorspace="gray")


def test_resolution_checks() -> None:
    with pytest.raises(ValueError, match="data.resolution"):
        ImageDataModule(ShapesDataset(size=4), resolution=30)
    with pytest.raises(ValueError, match="data.resolution"):
        ImageDataModule(ShapesDataset(size=4, resolution=32), resolution=[32, 64])
    with pytest.raises(ValueError, match="data.resolution"):
        ImageDataModule(functools.partial(ShapesDataset, size=4, resolution=16), resolution=32)


@pytest.mark.parametrize("colorspace,channels", [("rgba", 4), ("gray", 3), ("hsv_polar", 3)])
def test_shapes_config_instantiates(colorspace: str, channels: int) -> None:
    cfg = OmegaConf.create(
        {
            "seed": 3,
            "colorspace": OmegaConf.load(CONF / "colorspace" / f"{colorspace}.yaml"),
            "data": OmegaConf.load(CONF / "data" / "shapes.yaml"),
        }
    )
    cfg.data.resolution = [16, 32]
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, ImageDataModule)
    dm.setup("fit")
    assert dm.dataset.channels == channels and dm.dataset.seed == 3
    assert dm.resolution == (16, 32) and dm.colorspace.name == colorspace
    assert dm.img_channels == cfg.colorspace.channels
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["image"].shape == (16, cfg.colorspace.channels, 16, 32)


# ------------------------------------------------------------------------------------------------
# with a real Trainer: Lightning saves and restores the position through the checkpoint
# ------------------------------------------------------------------------------------------------


class RecordingModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        assert batch["image"].dtype == torch.float32
        self.seen.append(batch["image"].clone())
        return self.w * batch["image"].mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit(max_steps: int, ckpt_path: str | None = None, save_to: Path | None = None, **dm_kwargs) -> RecordingModule:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    module = RecordingModule()
    trainer.fit(module, datamodule=make_dm(colorspace="hsv_polar", **dm_kwargs), ckpt_path=ckpt_path)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    return module


def test_resume_through_lightning_checkpoint(tmp_path: Path) -> None:
    full = fit(8).seen
    ckpt = tmp_path / "mid.ckpt"
    first = fit(3, save_to=ckpt).seen
    saved = torch.load(ckpt, weights_only=True)
    assert saved["ImageDataModule"] == {"consumed": 12}
    rest = fit(8, ckpt_path=str(ckpt)).seen
    assert len(full) == 8 and len(first) == 3 and len(rest) == 5
    for a, b in zip(full, first + rest):
        assert torch.equal(a, b)


def test_xflip_resume_through_lightning_checkpoint(tmp_path: Path) -> None:
    plain = fit(6).seen
    full = fit(6, xflip=True).seen
    ckpt = tmp_path / "mid.ckpt"
    first = fit(2, save_to=ckpt, xflip=True).seen
    rest = fit(6, ckpt_path=str(ckpt), xflip=True).seen
    for a, b in zip(full, first + rest):
        assert torch.equal(a, b)
    flipped = sum(int(not torch.equal(a[i], p[i])) for a, p in zip(full, plain) for i in range(a.shape[0]))
    assert 0 < flipped < 24  # about half of the 24 samples, the rest unchanged
    for a, p in zip(full, plain):  # hsv_polar is per-pixel, so a flipped sample is the flipped plain one
        for i in range(a.shape[0]):
            assert torch.equal(a[i], p[i]) or torch.allclose(a[i], p[i].flip(-1))


def test_val_dataloader_is_finite_and_ordered() -> None:
    val = ShapesDataset(size=10, resolution=16, seed=3)
    dm = ImageDataModule(ShapesDataset(size=8, resolution=16), val_dataset=val, batch_size=4, resolution=16)
    dm.setup("fit")
    loader = dm.val_dataloader()
    got = list(loader)
    assert [b["image"].shape[0] for b in got] == [4, 4, 2]  # last partial batch kept
    assert torch.equal(torch.cat([b["image"] for b in got]), torch.stack([val[i]["image"] for i in range(10)]))
    assert torch.equal(list(dm.val_dataloader())[0]["image"], got[0]["image"])  # same order every time
    lazy = ImageDataModule(
        ShapesDataset(size=8, resolution=16),
        val_dataset=functools.partial(ShapesDataset, size=3, resolution=16),
        batch_size=2,
    )
    assert len(lazy.val_dataset) == 3
    with pytest.raises(ValueError, match="data.dataset.channels"):
        ImageDataModule(
            ShapesDataset(size=8, resolution=16),
            val_dataset=functools.partial(ShapesDataset, size=3, resolution=16, channels=4),
        )


def test_no_val_dataset_means_no_val_loader() -> None:
    from pytorch_lightning.utilities.model_helpers import is_overridden

    assert not is_overridden("val_dataloader", make_dm(), pl.LightningDataModule)
    with_val = make_dm(val_dataset=ShapesDataset(size=4, resolution=32))
    assert is_overridden("val_dataloader", with_val, pl.LightningDataModule)
