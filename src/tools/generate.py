"""Generate images from a trained StyleGAN2 checkpoint, one PNG per seed (CPU or GPU).

    python scripts/generate.py ckpt=PATH seeds=0-15 trunc=0.7 noise_mode=const out=DIR
    python scripts/generate.py ckpt=PATH latents=out/project/latents.safetensors out=DIR

Keys: ``ckpt`` (a gamut .ckpt or an exported .safetensors; required), ``latents`` (a latent file
from ``scripts/project.py``, or NVIDIA's ``projected_w.npz``: renders its ws instead of seeds, one
PNG per code, with the file's noise maps under ``noise_mode=const``), ``seeds`` (``0-15``, ``1,5,9`` or ``[1,5]``; default 0-7), ``trunc``
(psi, 1 = off), ``trunc_cutoff`` (first ws to truncate; null = all), ``noise_mode``
(const|random|none), ``class_idx`` (conditional models), ``out`` (folder), ``device`` (cpu|cuda),
``batch`` (images per forward pass). Images are decoded from the model's color space to RGB, or
RGBA for rgba models. Seeds map to z exactly as in stylegan2-ada-pytorch's generate.py: ``z =
RandomState(seed).randn(z_dim)`` (:func:`src.modules.segan.editing.seed_latents`, shared with the
SEGAN tools).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.utils.cli import exit_on_bad_input, parse_key_values  # noqa: E402
from src.modules.segan.editing import seed_latents  # noqa: E402
from src.utils.export import load_inference  # noqa: E402
from src.utils.io import image_grid, save_png  # noqa: E402

DEFAULTS = dict(ckpt=None, seeds="0-7", trunc=1.0, trunc_cutoff=None, noise_mode="const", class_idx=None,
                out="out", device="cpu", batch=16, latents=None)


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


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """Move the first ``cutoff`` (all when None) codes of ``ws`` toward ``w_avg`` by ``1 - psi``."""
    if psi == 1:
        return ws
    ws = ws.clone()
    cut = ws.shape[1] if cutoff is None else int(cutoff)
    ws[:, :cut] = w_avg.to(ws).lerp(ws[:, :cut], psi)
    return ws


def generate_from_latents(cfg, model) -> list[Path]:
    """One PNG per code of a latent file (named after the projected targets when it records them)."""
    from src.projection.latents import load_latents, render

    latents = load_latents(cfg.latents, model.G)
    latents.ws = truncate(latents.ws, model.G.mapping.w_avg.cpu(), float(cfg.trunc), cfg.trunc_cutoff)
    names = latents.info.get("names") or [f"latent{i:04d}" for i in range(len(latents))]
    rgb = model.colorspace.decode(render(model.G, latents, cfg.noise_mode, int(cfg.batch)))
    return [save_png(image_grid(img[None]), Path(cfg.out) / f"{name}.png") for name, img in zip(names, rgb)]


def generate(cfg) -> list[Path]:
    model = load_inference(cfg.ckpt, cfg.device, channels_last=True)
    if cfg.latents:
        return generate_from_latents(cfg, model)
    out = Path(cfg.out)
    seeds = parse_seeds(cfg.seeds)
    written: list[Path] = []
    for i in range(0, len(seeds), cfg.batch):
        chunk = seeds[i: i + cfg.batch]
        z, _ = seed_latents(chunk, model.G.z_dim)
        labels = model.labels_for(len(chunk), cfg.class_idx)
        images = model.sample(z.to(cfg.device), labels, psi=float(cfg.trunc), cutoff=cfg.trunc_cutoff,
                              noise_mode=cfg.noise_mode)
        rgb = model.colorspace.decode(images)
        for seed, img in zip(chunk, rgb):
            written.append(save_png(image_grid(img[None]), out / f"seed{seed:04d}.png"))
    return written


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_bad_input("generate.py"):
        paths = generate(cfg)
    print(f"wrote {len(paths)} image(s) to {cfg.out}")


if __name__ == "__main__":
    main()
