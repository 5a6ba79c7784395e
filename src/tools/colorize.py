"""Colorize photos with a trained ChromaGAN checkpoint, at each image's own size (CPU or GPU).

    python scripts/colorize.py ckpt=PATH input=FILE_OR_DIR out=DIR [device=cpu] [overwrite=false]

Each image is read as RGB (grayscale, palette and RGBA files are converted; an alpha channel is kept
and written back), its CIE L is taken at full resolution, ab is predicted at the model's training size
(224 in the paper; smaller images are upsampled for the prediction) and upsampled back, and the result
is written as ``DIR/<name>.png`` with the input's size. A folder is searched recursively and its
sub-folders are mirrored in ``DIR``; files that are not images, or cannot be decoded, are skipped with
a warning. Existing outputs are kept unless ``overwrite=true``. Keys: ``ckpt`` (a ChromaGAN ``.ckpt``),
``input``, ``out``, ``device`` (cpu | cuda), ``overwrite``.
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from src.checkpoints.load import load_module
from src.datamodules.readers import is_image_name
from src.utils.cli import console_entry, exit_on_bad_input, parse_key_values
from src.utils.io import atomic_write

DEFAULTS = dict(ckpt=None, input=None, out="colorized", device="cpu", overwrite=False)


def find_images(source: Path) -> tuple[list[Path], list[Path]]:
    """``(images, skipped)``: image files under ``source`` (or ``source`` itself), and other files."""
    if source.is_file():
        return ([source], []) if is_image_name(source.name) else ([], [source])
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [p for p in files if is_image_name(p.name)], [p for p in files if not is_image_name(p.name)]


def read_rgb(path: Path) -> tuple[torch.Tensor, np.ndarray | None]:
    """``(rgb [1, 3, H, W] float in [0, 1], alpha [H, W] uint8 or None)``; raises OSError/ValueError if unreadable."""
    with PIL.Image.open(io.BytesIO(path.read_bytes())) as img:
        img.load()
        alpha = None
        source: PIL.Image.Image = img
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            source = img.convert("RGBA")
            alpha = np.array(source)[:, :, 3]
        rgb = np.array(source.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0), alpha


def write_png(path: Path, rgb: torch.Tensor, alpha: np.ndarray | None) -> None:
    array = (rgb[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if alpha is not None:
        array = np.concatenate([array, alpha[:, :, None]], axis=2)
    img = PIL.Image.fromarray(np.ascontiguousarray(array))
    atomic_write(path, lambda f: img.save(f, format="PNG"))


def colorize_files(model, images: list[Path], root: Path, out: Path, device: str, overwrite: bool) -> list[Path]:
    """Colorize ``images`` (under ``root``) into ``out``; returns the files written."""
    written = []
    for path in images:
        rel = path.relative_to(root) if root.is_dir() else Path(path.name)
        target = out / rel.with_suffix(".png")
        if target.exists() and not overwrite:
            warnings.warn(f"{target} exists: kept (overwrite=true replaces it)", stacklevel=2)
            continue
        try:
            rgb, alpha = read_rgb(path)
        except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as e:
            warnings.warn(f"{path}: skipped, not a readable image ({type(e).__name__}: {e})", stacklevel=2)
            continue
        result, _ = model.colorize_rgb(rgb.to(device))
        write_png(target, result, alpha)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> list[Path]:
    """Colorize what ``argv`` names (``key=value`` items; ``sys.argv[1:]`` when None); returns the files
    written."""
    cfg = parse_key_values(
        sys.argv[1:] if argv is None else argv,
        DEFAULTS,
        "colorize.py",
        required={"ckpt": "PATH", "input": "FILE_OR_DIR"},
        doc=__doc__,
    )
    source = Path(str(cfg.input))
    if not source.exists():
        raise SystemExit(f"colorize.py: input={str(source)!r}: no such file or folder")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"colorize.py: device={cfg.device!r}: CUDA is not available here; use device=cpu")
    with exit_on_bad_input("colorize.py"):
        model = load_module(cfg.ckpt, cfg.device)
    if not model.colorizes:
        raise SystemExit(
            f"colorize.py: ckpt={cfg.ckpt!r} holds a {type(model).__name__}, not a colorization "
            "model (train one with experiment=chromagan_*)"
        )
    images, others = find_images(source)
    for path in others:
        warnings.warn(f"{path}: skipped, not an image file", stacklevel=1)
    if not images:
        raise SystemExit(f"colorize.py: input={str(source)!r}: no image files found")
    out = Path(str(cfg.out))
    written = colorize_files(model, images, source, out, cfg.device, bool(cfg.overwrite))
    print(f"colorize.py: wrote {len(written)} of {len(images)} image(s) to {out}")
    return written


cli = console_entry(main)

if __name__ == "__main__":
    main()
