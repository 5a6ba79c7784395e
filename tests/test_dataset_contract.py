"""The data-set contract (src/datamodules/dataset.py): every data set class gamut ships implements
``ImageDataset``, and any other map-style object still loads, wrapped with the protocol's defaults."""

from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.datamodules.dataset import BaseImageDataset, ForeignDataset, ImageDataset, as_image_dataset
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.readers import ImageFolderDataset
from src.datamodules.shapes import ShapesDataset
from src.metrics import cache as feature_cache

ROOT = Path(__file__).resolve().parents[1]

# torch Dataset subclasses in src/ that are not data sets a DataModule serves, each with its reason.
NOT_DATA_SETS = {
    "src.metrics.generated._Mirrored": "a private view: an ImageDataset and its x-flips, for one metric pass",
}

MEMBERS = sorted({name for name in vars(ImageDataset) if not name.startswith("_")} | {"__len__", "__getitem__"})


def _dataset_classes() -> list[type]:
    """Every class under src/ whose bases name a data set (parsed, then its module imported)."""
    found: dict[str, type] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and any("Dataset" in ast.unparse(base) for base in node.bases)
        ]
        if not names:
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for name in names:
            cls = vars(module)[name]
            if issubclass(cls, torch.utils.data.Dataset):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[k] for k in sorted(found)]


DATASET_CLASSES = _dataset_classes()


def test_the_scan_finds_the_shipped_data_sets():
    names = {c.__name__ for c in DATASET_CLASSES}
    assert {"ImageFolderDataset", "ShapesDataset", "TinyImageNetDataset", "FashionMNISTDataset"} <= names


@pytest.mark.parametrize("cls", DATASET_CLASSES, ids=lambda c: c.__qualname__)
def test_every_shipped_data_set_implements_the_protocol(cls):
    key = f"{cls.__module__}.{cls.__qualname__}"
    if key in NOT_DATA_SETS:
        pytest.skip(NOT_DATA_SETS[key])
    assert issubclass(cls, BaseImageDataset), f"{key} must subclass src.datamodules.dataset.BaseImageDataset"
    missing = [m for m in MEMBERS if not hasattr(cls, m)]
    assert not missing, f"{key} lacks {missing}"


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(root / f"{i}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_instances_answer_every_member(tmp_path):
    folder = ImageFolderDataset(_folder(tmp_path), resolution=16)
    shapes = ShapesDataset(size=4, resolution=16)
    for ds in (folder, shapes):
        assert isinstance(ds, ImageDataset) and as_image_dataset(ds) is ds
    assert (folder.channels, folder.resolution, folder.num_classes, folder.label_counts) == (3, (16, 16), 0, None)
    assert folder.root == tmp_path / "images" and folder.ignored == 1
    assert list(folder.bad_files) == [] and folder.summary() == f"{tmp_path / 'images'}: 1 non-image file(s) ignored"
    assert (shapes.root, shapes.ignored, list(shapes.bad_files), shapes.summary()) == (None, 0, [], "")
    assert shapes.num_classes == 6 and int(shapes.label_counts.sum()) == 4


class Plain(torch.utils.data.Dataset):
    """A user's data set that knows nothing of gamut's protocol."""

    def __init__(self, n: int = 8) -> None:
        self.images = torch.randint(0, 255, (n, 3, 16, 16), dtype=torch.uint8)
        self.num_classes = 5  # not the protocol: only an ImageDataset declares labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.tensor(0)}


def test_a_foreign_data_set_loads_with_the_defaults():
    plain = Plain()
    dm = ImageDataModule(plain, batch_size=4, resolution=16)
    assert isinstance(dm.dataset, ForeignDataset) and dm.dataset.wrapped is plain
    assert dm.resolution == (16, 16) and dm.num_classes == 0 and dm.label_counts is None
    assert dm.bad_files_report() == "" and dm.val_dataset is None and dm.xflip is False
    assert torch.equal(dm.dataset[3]["image"], plain[3]["image"])
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["image"].shape == (4, 3, 16, 16)
    # the size comes from the first image when neither the data set nor data.resolution declares it
    assert ImageDataModule(functools.partial(Plain, 4), batch_size=2).resolution == (16, 16)


def test_the_feature_cache_describes_the_wrapped_object(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    plain = Plain()
    ident = feature_cache.dataset_identity(ForeignDataset(plain), "rgb", 8, weights)
    assert ident == feature_cache.dataset_identity(plain, "rgb", 8, weights)
    assert ident["dataset"].endswith(".Plain") and ident["settings"] == {"num_classes": 5}


class Declared:
    """Not a gamut class, but it implements every member of the protocol: used as it is."""

    channels, resolution, num_classes, root, ignored, bad_files = 3, (16, 16), 2, None, 0, ()
    label_counts = torch.tensor([2, 2])

    def summary(self) -> str:
        return ""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.zeros(3, 16, 16, dtype=torch.uint8), "label": torch.tensor(i % 2)}


def test_a_structural_implementation_is_used_as_it_is():
    declared = Declared()
    dm = ImageDataModule(declared, batch_size=2)
    assert dm.dataset is declared and dm.num_classes == 2 and dm.label_counts.tolist() == [2, 2]
    with pytest.raises(ValueError, match=r"data\.dataset\.channels=3"):
        ImageDataModule(declared, colorspace="rgba")
