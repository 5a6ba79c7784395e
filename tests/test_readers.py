"""Readers: decoding every PIL mode, center-crop + resize, bad data, folder and zip sources
(src/datamodules/readers/). Fixtures write real PNG/JPEG/TIFF files and dataset_tool zips."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from src.datamodules.readers import (
    IMAGE_EXTENSIONS,
    RESIZE_FILTERS,
    BadImageError,
    FolderSource,
    ImageTooSmallError,
    ZipSource,
    convert_image,
    decode_image,
    open_source,
)

# ------------------------------------------------------------------------------------------------
# real-format data builders (also used by tests/test_folder_data.py)
# ------------------------------------------------------------------------------------------------


def encode(img: PIL.Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def gradient_rgb(width: int = 40, height: int = 40, seed: int = 0) -> PIL.Image.Image:
    """An RGB image whose left and right halves differ (so flips are visible)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    a = np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            rng.integers(0, 256, (height, width, 1)),
        ],
        axis=2,
    )
    return PIL.Image.fromarray(a.astype(np.uint8), "RGB")


def palette_with_transparency(size: int = 40) -> PIL.Image.Image:
    """``P`` image: left half index 0 (transparent), right half index 1 (opaque red)."""
    img = PIL.Image.new("P", (size, size), 0)
    img.putpalette([0, 0, 255, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.paste(1, (size // 2, 0, size, size))
    img.info["transparency"] = 0
    return img


def i16_image(size: int = 40) -> PIL.Image.Image:
    a = np.zeros((size, size), dtype=np.uint16)
    a[:, : size // 2] = 65535
    a[:, size // 2 :] = 32768
    img = PIL.Image.fromarray(a)
    assert img.mode == "I;16"
    return img


def mixed_files(size: int = 40) -> dict[str, bytes]:
    """Relative path -> bytes: one good image per PIL mode plus the bad cases."""
    rgb = gradient_rgb(size, size)
    good_png = encode(rgb)
    files = {
        "modes/rgb.png": good_png,
        "modes/gray.png": encode(rgb.convert("L")),
        "modes/gray_alpha.png": encode(rgb.convert("LA")),
        "modes/rgba.png": encode(rgb.convert("RGBA")),
        "modes/palette.png": encode(palette_with_transparency(size), transparency=0),
        "modes/cmyk.jpg": encode(PIL.Image.new("CMYK", (size, size), (0, 255, 255, 0)), "JPEG", quality=95),
        "modes/sixteen.png": encode(i16_image(size)),
        "UPPER.PNG": good_png,
        "bad/truncated.png": good_png[: len(good_png) // 2],
        "bad/empty.png": b"",
        "bad/small.png": encode(gradient_rgb(8, 8)),
        "notes.txt": b"not an image",
    }
    return files


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_ffhq_tree(root: Path, n: int = 6, size: int = 40) -> Path:
    """The official FFHQ download layout, with small images: images1024x1024/NNNNN/NNNNN.png
    (1000 per subfolder), thumbnails128x128/... and the metadata beside them."""
    for i in range(n):
        folder = i // 3 * 1000  # two subfolders with a few images, to exercise the nesting
        idx = folder + i % 3
        for sub, s in (("images1024x1024", size), ("thumbnails128x128", size // 2)):
            path = root / sub / f"{folder:05d}" / f"{idx:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            gradient_rgb(s, s, seed=i).save(path)
    (root / "ffhq-dataset-v2.json").write_text("{}")
    (root / "LICENSE.txt").write_text("CC BY-NC-SA 4.0")
    return root


def write_dataset_zip(path: Path, n: int = 8, size: int = 32, num_classes: int = 3, labels: bool = True) -> Path:
    """A stylegan2-ada dataset_tool.py zip: 00000/img00000000.png ... plus dataset.json."""
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(n)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for i, name in enumerate(names):
            z.writestr(name, encode(gradient_rgb(size, size, seed=i)))
        meta = {"labels": [[name, i % num_classes] for i, name in enumerate(names)] if labels else None}
        z.writestr("dataset.json", json.dumps(meta))
    return path


# ------------------------------------------------------------------------------------------------
# decode_image: modes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "CMYK", "I;16", "I", "F", "1", "YCbCr"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_every_mode_gives_the_channels_asked(mode: str, channels: int) -> None:
    img = PIL.Image.new(mode, (12, 10))
    if mode == "YCbCr":  # Pillow 12 cannot read back its own YCbCr TIFF (13 can): the decoded image itself
        t = convert_image(img, channels, name="x")
    else:
        t = decode_image(encode(img, "TIFF" if mode in ("I", "F", "CMYK") else "PNG"), channels, name="x")
    assert t.dtype == torch.uint8 and t.shape == (channels, 10, 12) and t.is_contiguous()


def test_mode_values() -> None:
    files = mixed_files(40)
    rgb = decode_image(files["modes/rgb.png"], 3)
    gray = decode_image(files["modes/gray.png"], 3)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # L -> R = G = B
    luma = decode_image(files["modes/rgb.png"], 1)[0].float()
    ref = (rgb.float() * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    assert (luma - ref).abs().max() <= 1  # ITU-R 601-2
    assert torch.all(decode_image(files["modes/rgb.png"], 4)[3] == 255)  # no alpha -> opaque
    assert torch.equal(decode_image(files["modes/rgba.png"], 3), rgb)  # alpha dropped for 3 channels

    pal = decode_image(files["modes/palette.png"], 4)
    assert torch.all(pal[3, :, :20] == 0) and torch.all(pal[3, :, 20:] == 255)  # transparency -> alpha 0
    assert torch.all(pal[:3, :, 20:] == torch.tensor([255, 0, 0], dtype=torch.uint8)[:, None, None])

    la = decode_image(files["modes/gray_alpha.png"], 4)
    assert torch.all(la[3] == 255) and torch.equal(la[0], la[2])

    i16 = decode_image(files["modes/sixteen.png"], 1)[0]
    assert torch.all(i16[:, :20] == 255) and torch.all(i16[:, 20:] == 128)  # scaled, not clipped

    cmyk = decode_image(files["modes/cmyk.jpg"], 3).float().mean((1, 2))  # CMYK (0, 1, 1, 0) = red
    assert cmyk[0] > 245 and cmyk[1] < 10 and cmyk[2] < 10

    one = decode_image(encode(PIL.Image.new("1", (4, 4), 1)), 3)
    assert torch.all(one == 255)


def test_first_gif_frame() -> None:
    frames = [PIL.Image.new("P", (8, 8), i) for i in range(2)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 255, 255] + [0] * 750)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert torch.all(decode_image(buf.getvalue(), 3) == 0)


# ------------------------------------------------------------------------------------------------
# decode_image: crop and resize
# ------------------------------------------------------------------------------------------------


def test_center_crop_and_box_resize_by_hand() -> None:
    a = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6) * 10  # H=4, W=6
    data = encode(PIL.Image.fromarray(a, "L"))
    out = decode_image(data, 1, (2, 2), "box")[0].numpy().astype(float)
    crop = a[:, 1:5].astype(float)  # square center crop: columns 1..4
    want = crop.reshape(2, 2, 2, 2).mean(axis=(1, 3))
    assert np.abs(out - want).max() <= 0.5 + 1e-6

    b = np.arange(8 * 8, dtype=np.uint8).reshape(8, 8) * 3  # non-square target: 2 high, 4 wide
    out = decode_image(encode(PIL.Image.fromarray(b, "L")), 1, (2, 4), "box")[0].numpy().astype(float)
    want = b[2:6].astype(float).reshape(2, 2, 4, 2).mean(axis=(1, 3))  # rows 2..5, 2x2 boxes
    assert out.shape == (2, 4) and np.abs(out - want).max() <= 0.5 + 1e-6

    exact = decode_image(data, 1, (4, 4))[0].numpy()  # crop only, no resampling
    assert np.array_equal(exact, a[:, 1:5])


@pytest.mark.parametrize("resize_filter", RESIZE_FILTERS)
def test_filters_and_non_square(resize_filter: str) -> None:
    t = decode_image(encode(gradient_rgb(40, 40)), 3, (16, 32), resize_filter)
    assert t.shape == (3, 16, 32)
    assert t[0, :, 0].float().mean() < t[0, :, -1].float().mean()  # left-to-right ramp kept


def test_smaller_than_target_is_refused_unless_allowed() -> None:
    data = encode(gradient_rgb(40, 20))  # W=40, H=20
    with pytest.raises(ImageTooSmallError, match="small.png.*40x20"):
        decode_image(data, 3, (32, 32), name="small.png")
    assert decode_image(data, 3, (16, 32)).shape == (3, 16, 32)  # wide target fits
    assert decode_image(data, 3, (32, 32), allow_upscale=True).shape == (3, 32, 32)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"GIF89a garbage", "cannot decode"),
        (b"hello, world", "cannot decode"),
    ],
)
def test_bad_bytes_raise_naming_the_file(data: bytes, match: str) -> None:
    with pytest.raises(BadImageError, match=f"a/b.png: .*{match}"):
        decode_image(data, 3, name="a/b.png")


def test_truncated_png_raises() -> None:
    png = encode(gradient_rgb(40, 40))
    with pytest.raises(BadImageError, match="t.png"):
        decode_image(png[: len(png) // 2], 3, name="t.png")
    with pytest.raises(ValueError, match="resize_filter"):
        decode_image(png, 3, (8, 8), "antialias")


# ------------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------------


def test_folder_source_order_and_ignored(tmp_path: Path) -> None:
    root = write_files(tmp_path / "mixed", mixed_files())
    write_files(root, {".hidden/x.png": b"", "._mac.png": b"", "modes/.DS_Store": b""})
    src = FolderSource(root)
    names = [src.name(i) for i in range(len(src))]
    assert names == sorted(names) and len(names) == 11
    assert "UPPER.PNG" in names and "notes.txt" not in names and not any("/." in n or n.startswith(".") for n in names)
    assert src.ignored == 3  # notes.txt, ._mac.png, .DS_Store
    assert src.labels is None
    assert src.read(names.index("modes/rgb.png")) == (root / "modes/rgb.png").read_bytes()
    assert names == [FolderSource(str(root)).name(i) for i in range(len(src))]  # deterministic
    assert all(ext.lower() == ext for ext in IMAGE_EXTENSIONS)


def test_folder_source_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        FolderSource(tmp_path / "nope")
    write_files(tmp_path / "text", {"a.txt": b"x"})
    with pytest.raises(ValueError, match="no images.*1 other files ignored"):
        FolderSource(tmp_path / "text")


def test_zip_source_labels_and_lazy_handle(tmp_path: Path) -> None:
    path = write_dataset_zip(tmp_path / "ds.zip", n=5)
    src = open_source(path)
    assert isinstance(src, ZipSource) and len(src) == 5
    assert src.name(0) == "00000/img00000000.png"
    assert src.labels == [0, 1, 2, 0, 1]
    assert src._zip is None  # opened lazily, on first read
    first = src.read(0)
    assert decode_image(first, 3).shape == (3, 32, 32)
    clone = pickle.loads(pickle.dumps(src))  # as sent to a spawned worker
    assert clone._zip is None and clone.read(0) == first
    src.close()
    unlabeled = write_dataset_zip(tmp_path / "nolabels.zip", n=2, labels=False)
    assert ZipSource(unlabeled).labels is None


def test_zip_source_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("a.png", encode(gradient_rgb(8, 8)))
        z.writestr("dataset.json", json.dumps({"labels": [["a.png", [0.5, 0.5]]]}))
    with pytest.raises(ValueError, match="dataset.json.*a.png.*integer"):
        ZipSource(bad)
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    with pytest.raises(ValueError, match="fake.zip"):
        open_source(tmp_path / "fake.zip")


def test_ffhq_layout(tmp_path: Path) -> None:
    root = write_ffhq_tree(tmp_path / "ffhq", n=6)
    src = open_source(root, layout="ffhq")
    assert src.root == root / "images1024x1024" and len(src) == 6
    assert src.name(3) == "01000/01000.png"
    assert len(open_source(root)) == 12  # as a plain folder: both trees
    thumbs = tmp_path / "thumbs"
    thumbs.mkdir()
    (root / "thumbnails128x128").rename(thumbs / "thumbnails128x128")
    assert open_source(thumbs, layout="ffhq").root == thumbs / "thumbnails128x128"
    assert len(open_source(root / "images1024x1024", layout="ffhq")) == 6  # the subfolder itself
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("x")
    with pytest.raises(ValueError, match=f"{tmp_path / 'empty'}.*images1024x1024"):
        open_source(tmp_path / "empty", layout="ffhq")
    with pytest.raises(FileNotFoundError, match="data.root.*missing"):
        open_source(tmp_path / "missing")


def test_skipping_dataset_requires_its_hooks():
    from src.datamodules.readers import SkippingImageDataset

    class Incomplete(SkippingImageDataset):
        def __len__(self) -> int:
            return 1

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()
