"""Generate images from a trained StyleGAN2 checkpoint, one PNG per seed (CPU or GPU).

    python scripts/generate.py ckpt=PATH seeds=0-15 trunc=0.7 noise_mode=const out=DIR
    python scripts/generate.py ckpt=PATH latents=out/project/latents.safetensors out=DIR
    python scripts/generate.py ckpt=PATH seeds=0-3 translate=0.3,1 rotate=45 out=DIR

Keys: ``ckpt`` (a gamut .ckpt or an exported .safetensors; required), ``latents`` (a latent file
from ``scripts/project.py``, or NVIDIA's ``projected_w.npz``: renders its ws instead of seeds, one
PNG per code, with the file's noise maps under ``noise_mode=const``), ``seeds`` (``0-15``, ``1,5,9``
or ``[1,5]``; default 0-7), ``trunc``
(psi, 1 = off), ``trunc_cutoff`` (first ws to truncate; null = all), ``noise_mode``
(const|random|none), ``class_idx`` (conditional models; default: each seed's class drawn from the
training data's class frequencies), ``out`` (folder), ``device`` (cpu|cuda),
``batch`` (images per forward pass), ``translate`` (``X,Y``; default ``0,0``) and ``rotate`` (degrees; 0):
NVlabs/stylegan3 ``gen_images.py``'s ``--translate`` and ``--rotate``, applied through the synthesis input's
transform (:func:`src.nn.input_transform.transformed`; one unit of ``translate`` is the image width for
square power-of-two models); a generator without an input transform (a learned constant input) refuses
anything but ``0,0`` and 0. Images are decoded from the model's color space to RGB, or
RGBA for rgba models. Seeds map to z exactly as in stylegan2-ada-pytorch's generate.py: ``z =
RandomState(seed).randn(z_dim)`` (:func:`src.latents.seeds.seed_latents`, shared by every tool).
"""

from __future__ import annotations

import sys
from pathlib import Path

from src.checkpoints.load import load_inference
from src.latents.seeds import parse_seeds, seed_latents
from src.latents.truncation import truncate
from src.nn.input_transform import parse_rotate, parse_translate, transformed
from src.utils.cli import console_entry, exit_on_bad_input, parse_key_values
from src.utils.io import image_grid, save_png

DEFAULTS = dict(
    ckpt=None,
    seeds="0-7",
    trunc=1.0,
    trunc_cutoff=None,
    noise_mode="const",
    class_idx=None,
    out="out",
    device="cpu",
    batch=16,
    latents=None,
    translate="0,0",
    rotate=0.0,
)


def parse_args(argv: list[str]):
    cfg = parse_key_values(argv, DEFAULTS, "generate.py", required={"ckpt": "PATH"}, doc=__doc__)
    return cfg


def generate_from_latents(cfg, model) -> list[Path]:
    """One PNG per code of a latent file (named after the projected targets when it records them)."""
    from src.latents.files import load_latents, render

    latents = load_latents(cfg.latents, model.G)
    latents.ws = truncate(latents.ws, model.G.mapping.w_avg.cpu(), float(cfg.trunc), cfg.trunc_cutoff)
    names = latents.info.get("names") or [f"latent{i:04d}" for i in range(len(latents))]
    rgb = model.colorspace.decode(render(model.G, latents, cfg.noise_mode, int(cfg.batch)))
    return [save_png(image_grid(img[None]), Path(cfg.out) / f"{name}.png") for name, img in zip(names, rgb)]


def generate(cfg) -> list[Path]:
    translate, rotate = parse_translate(cfg.translate), parse_rotate(cfg.rotate)
    model = load_inference(cfg.ckpt, cfg.device, channels_last=True)
    with transformed(model.G.synthesis, translate, rotate):
        if cfg.latents:
            return generate_from_latents(cfg, model)
        return generate_from_seeds(cfg, model)


def generate_from_seeds(cfg, model) -> list[Path]:
    """One PNG per seed, ``seed####.png``."""
    out = Path(cfg.out)
    seeds = parse_seeds(cfg.seeds)
    written: list[Path] = []
    for i in range(0, len(seeds), cfg.batch):
        chunk = seeds[i : i + cfg.batch]
        z, _ = seed_latents(chunk, model.G.z_dim)
        labels = model.labels_for(len(chunk), cfg.class_idx, seeds=chunk)
        images = model.sample(
            z.to(cfg.device), labels, psi=float(cfg.trunc), cutoff=cfg.trunc_cutoff, noise_mode=cfg.noise_mode
        )
        rgb = model.colorspace.decode(images)
        for seed, img in zip(chunk, rgb):
            written.append(save_png(image_grid(img[None]), out / f"seed{seed:04d}.png"))
    return written


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_bad_input("generate.py"):
        paths = generate(cfg)
    print(f"wrote {len(paths)} image(s) to {cfg.out}")


cli = console_entry(main)

if __name__ == "__main__":
    main()
