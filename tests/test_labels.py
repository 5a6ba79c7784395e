"""Labels as the data has them: class subfolders and dataset.json (one parser for the readers and
scripts/prepare_dataset.py), and generated labels drawn from the data's class frequencies in
training and in evaluation (as NVIDIA's stylegan2-ada-pytorch training_loop.py / metric_utils.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.callbacks.sample_grid import SampleGrid
from src.checkpoints.load import InferenceModel, load_module
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.labels import draw_labels, known_frequencies, parse_labels
from src.datamodules.readers import ImageFolderDataset
from src.metrics.generated import generated_labels, latents
from src.modules.segan.module import SEGAN
from src.modules.stylegan2.module import StyleGAN2
from src.tools import prepare_dataset
from src.train import train
from tests.conftest import TINY, TINY_MODULE, compose_cfg

ROOT = Path(__file__).resolve().parents[1]
N_DRAWS = 20000
TOL = 0.02  # 20000 draws at p = 0.9: standard deviation 0.002


def _png(path: Path, seed: int, size: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)


def _folder(root: Path, layout: dict[str, int]) -> Path:
    """``{subfolder: count}`` -> PNGs ``root/subfolder/im<k>.png`` ('' = directly in ``root``)."""
    k = 0
    for sub, count in layout.items():
        for _ in range(count):
            _png(root / sub / f"im{k:03d}.png" if sub else root / f"im{k:03d}.png", k)
            k += 1
    return root


def _tiny_module(num_classes: int = 2, cls: type[StyleGAN2] = StyleGAN2) -> StyleGAN2:
    return cls(**TINY_MODULE, num_classes=num_classes)


def _frequency_of_0(labels: torch.Tensor) -> float:
    return float((labels == 0).float().mean())


@pytest.fixture
def skewed(tmp_path: Path) -> Path:
    """Two classes, 90/10: ``common/`` (class 0) with 18 images, ``rare/`` (class 1) with 2."""
    return _folder(tmp_path / "skewed", {"common": 18, "rare": 2})


# ------------------------------------------------------------------------------------------------
# reading labels
# ------------------------------------------------------------------------------------------------


def test_subfolders_are_classes_in_sorted_order(tmp_path: Path) -> None:
    root = _folder(tmp_path / "animals", {"zebra": 2, "apple": 1, "mango": 1, "mango/ripe": 2})
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")  # not a class
    (root / ".hidden").mkdir()
    _png(root / ".hidden" / "skip.png", 99)  # hidden folders are not read
    ds = ImageFolderDataset(root, resolution=16, use_labels=True)
    assert ds.class_names == ["apple", "mango", "zebra"] and ds.num_classes == 3
    by_folder = {ds.name(i).split("/")[0]: int(ds[i]["label"]) for i in range(len(ds))}
    assert by_folder == {"apple": 0, "mango": 1, "zebra": 2}
    assert [ds.name(i) for i in range(len(ds)) if int(ds[i]["label"]) == 1] == [
        "mango/im003.png",
        "mango/ripe/im004.png",
        "mango/ripe/im005.png",
    ]
    assert ds.label_counts.tolist() == [1, 3, 2]
    assert ImageFolderDataset(root, resolution=16).num_classes == 0  # labels only when asked


def test_dataset_json_wins_over_subfolders(tmp_path: Path) -> None:
    root = _folder(tmp_path / "both", {"a": 2, "b": 1})
    names = [n.relative_to(root).as_posix() for n in sorted(root.rglob("*.png"))]
    (root / "dataset.json").write_text(json.dumps({"labels": [[n, 4 - i] for i, n in enumerate(names)]}))
    ds = ImageFolderDataset(root, resolution=16, use_labels=True)
    assert [int(ds[i]["label"]) for i in range(3)] == [4, 3, 2] and ds.num_classes == 5
    assert ds.class_names is None
    assert ds.ignored == 0  # dataset.json is not counted as an ignored non-image file


def test_use_labels_on_a_flat_folder_is_one_error_naming_the_file(tmp_path: Path) -> None:
    flat = _folder(tmp_path / "flat", {"": 2, "sub": 1})
    with pytest.raises(ValueError, match=r"data.use_labels=true: .*flat/im000.png is not in a class subfolder") as e:
        ImageFolderDataset(flat, resolution=16, use_labels=True)
    assert "\n" not in str(e.value)
    assert len(ImageFolderDataset(flat, resolution=16)) == 3  # without labels the folder reads as before


def test_bad_dataset_json_label_names_the_file_in_both_readers(tmp_path: Path) -> None:
    root = _folder(tmp_path / "bad", {"": 2})
    (root / "dataset.json").write_text(json.dumps({"labels": [["im000.png", 0], ["im001.png", "cat"]]}))
    expected = rf"{root / 'dataset.json'}: label of im001.png is 'cat'; only non-negative integer"
    with pytest.raises(ValueError, match=expected) as e:
        ImageFolderDataset(root, resolution=16, use_labels=True)
    assert "\n" not in str(e.value)
    with pytest.raises(SystemExit, match=expected):  # the same parser, the same message
        prepare_dataset.main([f"source={root}", f"out={tmp_path / 'bad.zip'}", "resolution=16", "workers=0"])
    assert len(ImageFolderDataset(root, resolution=16)) == 2  # not read without use_labels
    with pytest.raises(ValueError, match="x.json: no label for b.png"):
        parse_labels(json.dumps({"labels": [["a.png", 1]]}), ["a.png", "b.png"], "x.json")
    assert parse_labels('{"labels": [["a.png", [2]], ["sub\\\\b.png", 0]]}', ["a.png", "sub/b.png"], "x") == [2, 0]


# ------------------------------------------------------------------------------------------------
# prepare_dataset
# ------------------------------------------------------------------------------------------------


def test_prepare_dataset_writes_subfolder_labels(tmp_path: Path) -> None:
    root = _folder(tmp_path / "src", {"dog": 2, "cat": 3})
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG not really")  # skipped, so labels must shift
    out = tmp_path / "labeled.zip"
    m = prepare_dataset.main([f"source={root}", f"out={out}", "resolution=16", "workers=0", "use_labels=true"])
    assert m["labels"] is True and m["class_names"] == ["cat", "dog"] and m["skipped_count"] == 1
    source = ImageFolderDataset(root, resolution=16, use_labels=True, strict=False)
    good = [i for i in range(len(source)) if source.name(i) != "cat/broken.png"]
    packed = ImageFolderDataset(out, resolution=16, use_labels=True)
    assert [int(packed[j]["label"]) for j in range(len(packed))] == [source._label(i) for i in good]
    assert [int(packed[j]["label"]) for j in range(len(packed))] == [0, 0, 0, 1, 1]
    assert all(torch.equal(packed[j]["image"], source[i]["image"]) for j, i in enumerate(good))
    # default: labels only from a dataset.json (as before); use_labels=false: none
    m = prepare_dataset.main([f"source={root}", f"out={out}", "resolution=16", "workers=0", "overwrite=true"])
    assert m["labels"] is False and m["class_names"] is None


def test_prepare_dataset_label_errors_and_opt_out(tmp_path: Path) -> None:
    flat = _folder(tmp_path / "flat", {"": 2})
    with pytest.raises(SystemExit, match=r"use_labels=true: .*flat/im000.png is not in a class subfolder"):
        prepare_dataset.main([f"source={flat}", f"out={tmp_path / 'x.zip'}", "resolution=16", "use_labels=true"])
    with pytest.raises(SystemExit, match="use_labels='maybe'"):
        prepare_dataset.main([f"source={flat}", f"out={tmp_path / 'x.zip'}", "use_labels=maybe"])
    (flat / "dataset.json").write_text(json.dumps({"labels": [["im000.png", 1], ["im001.png", 0]]}))
    out = tmp_path / "off.zip"
    m = prepare_dataset.main([f"source={flat}", f"out={out}", "resolution=16", "workers=0", "use_labels=false"])
    assert m["labels"] is False
    m = prepare_dataset.main([f"source={flat}", f"out={out}", "resolution=16", "workers=0", "overwrite=true"])
    assert m["labels"] is True
    assert [int(x["label"]) for x in ImageFolderDataset(out, resolution=16, use_labels=True)] == [1, 0]


# ------------------------------------------------------------------------------------------------
# generated labels follow the data
# ------------------------------------------------------------------------------------------------


def test_datamodule_exposes_the_empirical_distribution(skewed: Path) -> None:
    dm = ImageDataModule(ImageFolderDataset(skewed, resolution=16, use_labels=True), resolution=16)
    assert dm.label_counts.tolist() == [18, 2]
    assert torch.allclose(dm.label_distribution, torch.tensor([0.9, 0.1]))
    assert ImageDataModule(ImageFolderDataset(skewed, resolution=16), resolution=16).label_distribution is None


@pytest.mark.parametrize("cls", [StyleGAN2, SEGAN])
def test_training_draws_labels_from_the_data_distribution(skewed: Path, cls: type[StyleGAN2]) -> None:
    module = _tiny_module(2, cls)
    torch.manual_seed(0)
    uniform = module.random_labels(N_DRAWS)  # no distribution known yet: the uniform fallback
    assert abs(_frequency_of_0(uniform.argmax(1)) - 0.5) < TOL
    dm = ImageDataModule(ImageFolderDataset(skewed, resolution=16, use_labels=True), resolution=16)
    module.set_label_distribution(dm.label_distribution)
    torch.manual_seed(0)
    labels = module.random_labels(N_DRAWS).argmax(1)
    assert abs(_frequency_of_0(labels) - 0.9) < TOL
    assert abs(_frequency_of_0(uniform.argmax(1)) - 0.9) > 10 * TOL  # a uniform draw would fail this check


def test_training_draws_are_rank_consistent() -> None:
    module = _tiny_module(3)
    module.set_label_distribution(torch.tensor([5.0, 3.0, 2.0]))
    torch.manual_seed(1)
    single = module.random_labels(8)
    shards = []
    for rank in range(2):
        module._rank, module._world = rank, 2
        torch.manual_seed(1)
        shards.append(module.random_labels(4))
    merged = torch.stack(shards, 1).reshape(8, 3)  # rank r holds global rows r::2
    assert torch.equal(merged, single)


def test_eval_draws_from_the_checkpointed_distribution(tmp_path: Path) -> None:
    module = _tiny_module()
    module.set_label_distribution(torch.tensor([0.9, 0.1]))
    hp = dict(module.hparams)
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": hp,
        "gamut": {"module": "src.modules.stylegan2.module.StyleGAN2", "cur_nimg": 0, "iteration": 0},
    }
    torch.save(ckpt, tmp_path / "new.ckpt")
    loaded = load_module(tmp_path / "new.ckpt")
    assert torch.allclose(loaded.label_distribution, torch.tensor([0.9, 0.1]))
    labels = generated_labels(loaded, N_DRAWS, torch.Generator().manual_seed(0))
    assert abs(_frequency_of_0(labels) - 0.9) < TOL
    _, labels = latents(loaded, N_DRAWS, torch.Generator().manual_seed(1))
    assert abs(_frequency_of_0(labels) - 0.9) < TOL
    # a checkpoint from before the buffer existed still loads (strictly) and falls back to uniform
    del ckpt["state_dict"]["label_distribution"]
    torch.save(ckpt, tmp_path / "old.ckpt")
    old = load_module(tmp_path / "old.ckpt")
    assert old.label_distribution.tolist() == [0.0, 0.0]
    assert abs(_frequency_of_0(generated_labels(old, N_DRAWS, torch.Generator().manual_seed(0))) - 0.5) < TOL
    assert generated_labels(_tiny_module(0), 4, torch.Generator()) is None
    assert draw_labels(torch.zeros(3), 3, 5).shape == (5,)  # all zeros = not known: uniform, no error


def test_fit_stores_the_data_distribution_in_the_checkpoint(tmp_path: Path, log_dir: Path, skewed: Path) -> None:
    tiny = [o for o in TINY if not o.startswith("data.dataset.size")]
    train(
        compose_cfg(
            [
                *tiny,
                "logger=none",
                "run_name=labels",
                "data.num_workers=0",
                "data=folder",
                f"data.root={skewed}",
                "data.use_labels=true",
                "model.num_classes=2",
                "trainer.max_steps=1",
            ]
        )
    )
    ckpt = next(log_dir.rglob("labels/checkpoints/last.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert torch.allclose(state["state_dict"]["label_distribution"], torch.tensor([0.9, 0.1]))


def test_sample_grid_cycles_through_the_classes_the_data_has(tmp_path: Path) -> None:
    module = _tiny_module(4)
    grid = SampleGrid(dirpath=tmp_path, num=8)
    assert grid.latents(module)[1].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]  # not known yet: every class
    module.set_label_distribution(torch.tensor([0.0, 5.0, 0.0, 3.0]))
    z, labels = grid.latents(module)
    assert labels.tolist() == [1, 3, 1, 3, 1, 3, 1, 3]  # classes absent from the data are never drawn
    assert z.shape == (8, module.G.z_dim)


def test_tools_draw_each_seeds_class_from_the_recorded_distribution(tmp_path: Path) -> None:
    module = _tiny_module(4)
    module.set_label_distribution(torch.tensor([0.0, 5.0, 0.0, 3.0]))
    model = InferenceModel(
        module.G_ema, module.colorspace, tmp_path / "x.ckpt", label_distribution=module.label_distribution
    )
    seeds = list(range(40))
    classes = model.labels_for(len(seeds), None, seeds=seeds).argmax(1)
    assert set(classes.tolist()) == {1, 3}  # only the classes the data has, both of them
    again = model.labels_for(3, None, seeds=[7, 2, 30]).argmax(1)
    assert again.tolist() == [classes[7], classes[2], classes[30]]  # a seed keeps its class
    assert model.labels_for(2, 2).argmax(1).tolist() == [2, 2]  # class_idx wins
    unknown = InferenceModel(module.G_ema, module.colorspace, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="class_idx="):
        unknown.labels_for(2, None)


def test_known_frequencies_treats_all_zeros_as_unknown() -> None:
    assert known_frequencies(None) is None
    assert known_frequencies(torch.zeros(3)) is None  # a checkpoint from before labels were counted
    known = known_frequencies(torch.tensor([0.0, 0.25, 0.75], dtype=torch.float64))
    assert known.dtype == torch.float32 and known.tolist() == [0.0, 0.25, 0.75]
