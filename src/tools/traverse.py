"""Traverse SEGAN subspace coordinates: a seeds x values grid per dimension (SEGan_Pytorch README fig. 6).

    python scripts/traverse.py ckpt=PATH layer=L subspace=N dims=[0,5] values=[-3,-1.5,0,1.5,3] seeds=0-3 out=DIR
    python scripts/traverse.py ckpt=PATH layer=L subspace=N latents=out/project/latents.safetensors out=DIR

Keys: ``ckpt`` (a gamut .ckpt or an exported .safetensors; required), ``latents`` (a latent file
from ``scripts/project.py``: one row per projected code instead of seeds, rendered with its noise
maps under ``noise_mode=const``; sampled coordinates come from seeds 0, 1, ...), ``layer`` /
``subspace`` (L, N; required), ``dims`` (coordinate indices;
default ``[0]``), ``values`` (default -3..3 in 5 steps), ``seeds`` (``0-3``, ``1,5,9`` or ``[1,5]``),
``op`` (``add`` | ``set`` | ``scale``), ``units`` (``sigma``: multiples of the coordinate's std over
``stats_n`` latents, ``set`` starts from the mean | ``raw``), ``noise_mode`` (const|random|none),
``class_idx`` (conditional models; default: each seed's class from the data's frequencies),
``out`` (folder), ``device`` (cpu|cuda), ``table`` (true: print
the subspace table and exit). Writes ``L{L}N{N}D{D}.png`` per dim: one row per seed (z exactly as
in generate.py), one column per value. Works for every mode; in mode 0 the coordinates are the
layer's w.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from src.checkpoints.load import load_inference
from src.latents.seeds import parse_seeds, seed_latents
from src.modules.segan.editing import Edit, resolve, subspace_table, traversal
from src.modules.segan.generator import SEGANGenerator
from src.utils.cli import console_entry, exit_on_bad_input, parse_key_values
from src.utils.io import image_grid, save_png

DEFAULTS = dict(
    ckpt=None,
    layer=None,
    subspace=None,
    dims=[0],
    values=[-3.0, -1.5, 0.0, 1.5, 3.0],
    seeds="0-3",
    op="add",
    units="sigma",
    stats_n=10000,
    noise_mode="const",
    class_idx=None,
    out="out",
    device="cpu",
    table=False,
    latents=None,
)


def parse_args(argv: list[str]):
    cfg = parse_key_values(argv, DEFAULTS, "traverse.py", required={"ckpt": "PATH"}, doc=__doc__)
    if not cfg.table and (cfg.layer is None or cfg.subspace is None):
        raise SystemExit("traverse.py: layer=L and subspace=N are required (table=true lists them)")
    return cfg


def _as_list(value) -> list:
    if isinstance(value, (int, float)):
        return [value]
    return list(value)


def print_table(g) -> None:
    print(f"{'id':>3} {'L':>2} {'N':>2} {'kind':<8} {'res':<8} {'slot':>4} {'q':>3}  top |L| dims")
    for i, layer, sub, kind, res, slot, q, top in subspace_table(g):
        print(f"{i:>3} {layer:>2} {sub:>2} {kind:<8} {res:<8} {slot:>4} {q:>3}  {top}")


def traverse(cfg) -> list[Path]:
    model = load_inference(cfg.ckpt, cfg.device, channels_last=True)
    g = model.G
    if not isinstance(g, SEGANGenerator):
        raise ValueError(f"ckpt={cfg.ckpt!r} is not a SEGAN checkpoint (model=segan)")
    if cfg.table:
        print_table(g)
        return []
    syn = g.synthesis
    layer, subspace = int(cfg.layer), int(cfg.subspace)
    dims = [int(d) for d in _as_list(cfg.dims)]
    values = [float(v) for v in _as_list(cfg["values"])]
    for d in dims:  # validate every dim before any work: one error naming the value and the range
        resolve(Edit(layer=layer, subspace=subspace, dim=d), syn.layout, syn.q)
    latents = None
    if cfg.latents:
        from src.latents.files import load_latents

        latents = load_latents(cfg.latents, g)
        seeds = list(range(len(latents)))
    else:
        seeds = parse_seeds(cfg.seeds)
    sampled = syn.coords == "sampled"
    z, coords = seed_latents(seeds, g.z_dim, syn.num_layers if sampled else 0, syn.q if sampled else 0)
    z = z.to(cfg.device)
    coords = None if coords is None else coords.to(cfg.device)
    labels = None if latents is not None else model.labels_for(len(seeds), cfg.class_idx, seeds=seeds)
    stats = None
    if cfg.units == "sigma" and cfg.op != "scale":  # over the classes the seeds are drawn from
        stats = g.coord_stats(n=int(cfg.stats_n), c=model.labels_for(int(cfg.stats_n), cfg.class_idx))
    out = Path(cfg.out)
    written = []
    for d in dims:
        images = _traversal(g, z, layer, subspace, d, values, cfg, stats, coords, labels, latents)
        grid = image_grid(model.colorspace.decode(images), nrow=len(values))
        written.append(save_png(grid, out / f"L{layer}N{subspace}D{d}.png"))
    return written


def _traversal(g, z, layer, subspace, d, values, cfg, stats, coords, labels, latents) -> torch.Tensor:
    if latents is None:
        return traversal(g, z, layer, subspace, d, values, cfg.op, cfg.units, stats, coords, cfg.noise_mode, labels)
    from src.latents.files import noise_override

    device = z.device
    noise = {k: v.to(device) for k, v in latents.noise.items()} if cfg.noise_mode == "const" else {}
    with noise_override(g, noise):
        return traversal(
            g, z, layer, subspace, d, values, cfg.op, cfg.units, stats, coords, cfg.noise_mode, ws=latents.ws.to(device)
        )


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    with exit_on_bad_input("traverse.py"):
        paths = traverse(cfg)
    if paths:
        print(f"wrote {len(paths)} grid(s) to {cfg.out}")


cli = console_entry(main)

if __name__ == "__main__":
    main()
