"""Export a checkpoint's G_ema for inference without Lightning (issue 7, "CPU inference and export").

    python scripts/export.py ckpt=PATH out=G.safetensors                # weights + JSON config
    python scripts/export.py ckpt=PATH out=G.pt format=torchscript      # traced: f(z, psi[, c]) -> image

Keys: ``ckpt`` (a gamut .ckpt, or a .safetensors export for ``format=torchscript``; required),
``out`` (required), ``format`` (safetensors|torchscript). The safetensors file loads with
``src.utils.export.load_generator`` (or ``load_inference``) and reproduces the checkpoint's
images exactly on CPU. The TorchScript file needs only torch: ``g = torch.jit.load(path);
img = g(z, torch.tensor(0.7))`` (noise mode 'const'; images in the model's color space, ~[-1, 1]).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.utils.cli import exit_on_bad_input, parse_key_values  # noqa: E402

PROG = "export.py"
DEFAULTS = dict(ckpt=None, out=None, format="safetensors")
FORMATS = ("safetensors", "torchscript")


def export(cfg) -> Path:
    from src.utils.checkpoints import load_module
    from src.utils.export import export_generator, export_torchscript, load_inference

    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: choose one of {', '.join(FORMATS)}")
    if cfg.format == "safetensors":
        if Path(cfg.ckpt).suffix == ".safetensors":
            raise ValueError(f"ckpt={cfg.ckpt!r} is already a safetensors export")
        return export_generator(load_module(cfg.ckpt, "cpu"), cfg.out)
    return export_torchscript(load_inference(cfg.ckpt, "cpu").G, cfg.out)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_key_values(sys.argv[1:] if argv is None else argv, DEFAULTS, PROG,
                           required={"ckpt": "PATH", "out": "FILE"})
    with exit_on_bad_input(PROG):
        path = export(cfg)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
