"""Import a public pretrained StyleGAN2 or StyleGAN3 model into a gamut checkpoint, without running its code.

    python scripts/import_checkpoint.py src=ffhq.pkl out=weights/ffhq.ckpt

Reads NVIDIA pickles (stylegan2-ada-pytorch; stylegan3 with cfg=stylegan2, which become gamut's
``StyleGAN2``, and cfg=stylegan3-t/-r, which become gamut's ``StyleGAN3``: ``G``, ``D``, ``G_ema``)
through a restricted unpickler that rebuilds tensors, numeric arrays and plain containers only, and
rosinality ``.pt`` files (``g``, ``d``, ``g_ema``, ``latent_avg``) with ``torch.load(weights_only=True)``.
Writes ``out`` (a gamut Lightning checkpoint) and ``out`` with ``.safetensors`` (G_ema + JSON config).

Keys: ``src`` (required), ``out`` (required, ``.ckpt``), ``discriminator`` (``import`` | ``fresh``:
keep a new D, e.g. for CIFAR-10's 'orig' D), ``export`` (write the safetensors file; default true),
``overwrite`` (replace an existing ``out``; default false).
"""

from __future__ import annotations

import sys
from pathlib import Path

from src.checkpoints.importing import import_checkpoint
from src.pretrained import UnsafePickleError, UnsupportedNetworkError
from src.utils.cli import console_entry, parse_key_values

DEFAULTS = dict(src=None, out=None, discriminator="import", export=True, overwrite=False)


def parse_args(argv: list[str]):
    cfg = parse_key_values(
        argv, DEFAULTS, "import_checkpoint.py", required={"src": "FILE", "out": "FILE.ckpt"}, doc=__doc__
    )
    return cfg


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    if Path(cfg.out).exists() and not cfg.overwrite:
        raise SystemExit(f"import_checkpoint.py: out={cfg.out!r} exists; pass overwrite=true to replace it")
    try:
        out, imported = import_checkpoint(cfg.src, cfg.out, discriminator=cfg.discriminator, export=cfg.export)
    except UnsafePickleError as e:
        raise SystemExit(f"import_checkpoint.py: {e}") from None
    except (FileNotFoundError, ValueError) as e:  # UnsupportedNetworkError is a ValueError
        kind = "unsupported network" if isinstance(e, UnsupportedNetworkError) else "error"
        raise SystemExit(f"import_checkpoint.py: {kind}: {e}") from None
    hp = imported.hparams
    print(
        f"imported {imported.format} {cfg.src} as {imported.family}: {hp['resolution']}x{hp['resolution']}, "
        f"{hp['img_channels']} channel(s), z {hp['z_dim']}, mapping {hp['map_depth']} layers, "
        f"channel_base {hp['channel_base']}"
        + (f" (G {hp['g_channel_base']})" if hp.get("g_channel_base") else "")
        + f", classes {hp['num_classes']}"
    )
    for note in imported.notes:
        print(f"note: {note}")
    print(f"wrote {out}" + (f" and {out.with_suffix('.safetensors')}" if cfg.export else ""))


cli = console_entry(main)

if __name__ == "__main__":
    main()
