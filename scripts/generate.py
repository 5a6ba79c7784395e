"""Generate images from a trained StyleGAN2 checkpoint, one PNG per seed (CPU or GPU).

    python scripts/generate.py ckpt=PATH seeds=0-15 trunc=0.7 noise_mode=const out=DIR

Keys: ``ckpt`` (required), ``seeds`` (``0-15``, ``1,5,9`` or ``[1,5]``; default 0-7), ``trunc``
(psi, 1 = off), ``trunc_cutoff`` (first ws to truncate; null = all), ``noise_mode``
(const|random|none), ``class_idx`` (conditional models), ``out`` (folder), ``device`` (cpu|cuda),
``batch`` (images per forward pass). Images are decoded from the model's color space to RGB, or
RGBA for rgba models. Seeds map to z exactly as in stylegan2-ada-pytorch's generate.py: ``z =
RandomState(seed).randn(z_dim)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.utils.cli import parse_key_values  # noqa: E402
from src.utils.checkpoints import load_module  # noqa: E402
from src.utils.io import image_grid, save_png  # noqa: E402

DEFAULTS = dict(ckpt=None, seeds="0-7", trunc=1.0, trunc_cutoff=None, noise_mode="const", class_idx=None,
                out="out", device="cpu", batch=16)


def parse_seeds(value) -> list[int]:
    """``'0-3,7'`` -> [0, 1, 2, 3, 7]; a list or an int passes through."""
    if isinstance(value, int):
        return [value]
    if not isinstance(value, str):
        return [int(v) for v in value]
    seeds: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError(f"seeds={value!r}: expected e.g. 0-15 or 1,5,9")
    return seeds


def parse_args(argv: list[str]):
    cfg = parse_key_values(argv, DEFAULTS, "generate.py", required={"ckpt": "PATH"})
    return cfg


def generate(cfg) -> list[Path]:
    model = load_module(cfg.ckpt, cfg.device)
    out = Path(cfg.out)
    seeds = parse_seeds(cfg.seeds)
    z_dim = model.G_ema.z_dim
    written: list[Path] = []
    for i in range(0, len(seeds), cfg.batch):
        chunk = seeds[i: i + cfg.batch]
        z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in chunk])).float()
        labels = None
        if model.num_classes:
            if cfg.class_idx is None:
                raise SystemExit(f"generate.py: this model is conditional ({model.num_classes} classes): pass class_idx=")
            labels = torch.full((len(chunk),), int(cfg.class_idx))
        images = model.sample(z.to(cfg.device), None if labels is None else labels.to(cfg.device),
                              psi=float(cfg.trunc), cutoff=cfg.trunc_cutoff, noise_mode=cfg.noise_mode)
        rgb = model.colorspace.decode(images)
        for seed, img in zip(chunk, rgb):
            written.append(save_png(image_grid(img[None]), out / f"seed{seed:04d}.png"))
    return written


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        paths = generate(cfg)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"generate.py: {e}") from None
    print(f"wrote {len(paths)} image(s) to {cfg.out}")


if __name__ == "__main__":
    main()
