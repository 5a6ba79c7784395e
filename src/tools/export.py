"""Export a checkpoint's G_ema for inference without Lightning (issue 7, "CPU inference and export").

    python scripts/export.py ckpt=PATH out=G.safetensors                # weights + JSON config
    python scripts/export.py ckpt=PATH out=G.pt format=torchscript      # traced: f(z, psi[, c]) -> image

Keys: ``ckpt`` (a gamut .ckpt, or a .safetensors export for ``format=torchscript``; required),
``out`` (required), ``format`` (safetensors|torchscript). The safetensors file loads with
``src.checkpoints.export.load_generator`` (or ``src.checkpoints.load.load_inference``) and reproduces the checkpoint's
images exactly on CPU. The TorchScript file needs only torch: ``g = torch.jit.load(path);
img = g(z, torch.tensor(0.7))`` (noise mode 'const'; images in the model's color space, ~[-1, 1]).
"""

from __future__ import annotations

import sys
from pathlib import Path

from src.utils.cli import console_entry, exit_on_bad_input, parse_key_values

PROG = "export.py"
DEFAULTS = dict(ckpt=None, out=None, format="safetensors")
FORMATS = ("safetensors", "torchscript")


def export(cfg) -> Path:
    from src.checkpoints.export import export_generator, export_torchscript
    from src.checkpoints.load import load_inference, load_module

    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: choose one of {', '.join(FORMATS)}")
    if cfg.format == "safetensors":
        if Path(cfg.ckpt).suffix == ".safetensors":
            raise ValueError(f"ckpt={cfg.ckpt!r} is already a safetensors export")
        return export_generator(load_module(cfg.ckpt, "cpu"), cfg.out)
    return export_torchscript(load_inference(cfg.ckpt, "cpu").G, cfg.out)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_key_values(
        sys.argv[1:] if argv is None else argv, DEFAULTS, PROG, required={"ckpt": "PATH", "out": "FILE"}, doc=__doc__
    )
    with exit_on_bad_input(PROG):
        path = export(cfg)
    print(f"wrote {path}")


cli = console_entry(main)

if __name__ == "__main__":
    main()
