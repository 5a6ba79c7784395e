"""Serve the latent explorer: a local web page over a generator or colorizer, on CPU by default.

    python scripts/explore.py ckpt=PATH [host=127.0.0.1] [port=7860] [device=cpu]
    make explore CKPT=PATH [EXPLORE_PORT=7860]

Keys: ``ckpt`` (a gamut .ckpt, an imported NVIDIA or rosinality model, or an exported .safetensors;
required), ``host`` (127.0.0.1: only this machine; anything else is announced, since everyone who can
reach it can use the page), ``port``, ``device`` (cpu | cuda), ``weights_dir`` (where
``vgg16-397923af.pth`` is, for projection; default torch hub's checkpoints folder, where it is downloaded
on first use), ``download_weights`` (true; false: never download, also ``GAMUT_OFFLINE=1``), ``stats_n``
(latents behind SEGAN's sigma units). Views: seed grid, style mixing, interpolation (and its video),
layers, noise, SEGAN subspaces, projection; ChromaGAN checkpoints get the colorizer. Each calls the
functions of generate.py, visualize.py, traverse.py, project.py and colorize.py (docs/explorer.md).
Stop with Ctrl-C: the temporary folder holding uploads and written files is removed.
"""

from __future__ import annotations

import os
import sys

from src.pretrained.weights import DEFAULT_WEIGHTS_DIR, allow_downloads
from src.utils.cli import console_entry, exit_on_bad_input, parse_key_values
from src.utils.optional import MissingExtra, require

PROG = "explore.py"
DEFAULTS = dict(
    ckpt=None,
    host="127.0.0.1",
    port=7860,
    device="cpu",
    weights_dir=DEFAULT_WEIGHTS_DIR,
    download_weights=True,
    stats_n=10000,
)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_key_values(
        sys.argv[1:] if argv is None else argv, DEFAULTS, PROG, required={"ckpt": "PATH"}, doc=__doc__
    )
    for key, low, high in (("port", 1, 65535), ("stats_n", 1, None)):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            raise SystemExit(f"{PROG}: {key}={value!r}: expected an integer in {low}..{high or 'any'}")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    try:
        require("explorer")
    except MissingExtra as e:
        raise SystemExit(f"{PROG}: {e}") from None
    from src.explorer.app import serve

    with exit_on_bad_input(PROG):
        allow_downloads(cfg.download_weights, "download_weights")  # projection's VGG-16: fetched on first use
        serve(cfg.ckpt, str(cfg.host), int(cfg.port), str(cfg.device), weights_dir=cfg.weights_dir, stats_n=cfg.stats_n)


cli = console_entry(main)

if __name__ == "__main__":
    main()
